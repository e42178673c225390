"""The per-class decode types: they list every field the transform reads, so decoding a JSON-RPC
answer into them changes nothing in the XO objects."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import orjson

from tests.cache.sample import build_sample_pool
from xod.cache.objects import SYNCED_CLASSES, PoolObjects, transform_pool
from xod.cache.records import ID_FIELDS, RAW_RECORDS_TYPE, RECORD_FIELDS, all_records_type
from xod.xapi.codec import decode_jsonrpc_response


class _RecordingRecord(dict):
    """A record that notes every field read from it."""

    def __init__(self, record: dict, read: set[str]) -> None:
        super().__init__(record)
        self.read = read

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(key)  # type: ignore[arg-type]  # any key asked is recorded
        return super().__contains__(key)


def _sample_records_with_every_branch() -> dict[str, dict[str, dict]]:
    """The sample pool plus variants that take the transform's rarer branches."""
    records = copy.deepcopy(build_sample_pool().records)
    for cls, suffix, changes in (
        ("VM", "pv", {"domain_type": "unspecified", "HVM_boot_policy": ""}),
        ("host", "xenserver", {"software_version": {"product_brand": "XenServer"}}),
        ("VIF", "limited", {"qos_algorithm_type": "ratelimit"}),
        ("VDI", "unmanaged", {"managed": False}),
        # A default template known by its other_config only (older XAPI).
        ("VM", "legacy-template", {"is_a_template": True, "is_a_snapshot": False,
                                   "is_control_domain": False, "is_default_template": False,
                                   "other_config": {"default_template": "true"}}),
    ):  # fmt: skip
        ref, record = next(iter(records[cls].items()))
        variant = {**record, **changes, "uuid": f"{record['uuid'][:-4]}beef"}
        records[cls][f"{ref[:-4]}{suffix[:4]}"] = variant
    return records


def test_every_field_the_transform_reads_is_decoded():
    records = _sample_records_with_every_branch()
    read: dict[str, set[str]] = {cls: set() for cls in records}
    recording = {
        cls: {ref: _RecordingRecord(r, read[cls]) for ref, r in by_ref.items()}
        for cls, by_ref in records.items()
    }
    transform_pool(recording)
    for cls, fields in read.items():
        missing = fields - {"uuid", *RECORD_FIELDS[cls]}
        assert not missing, f"{cls}: the transform reads {sorted(missing)}, not decoded"


def test_typed_decode_of_get_all_records_gives_the_same_objects():
    records = _sample_records_with_every_branch()
    decoded = {}
    for cls in SYNCED_CLASSES:
        body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": records.get(cls, {})})
        decoded[cls] = decode_jsonrpc_response(body, all_records_type(cls))
    vm_record = next(iter(decoded["VM"].values()))
    # Only the listed fields are kept (a VM record has 90).
    assert set(vm_record) <= {"uuid", *RECORD_FIELDS["VM"]}
    assert "last_booted_record" not in vm_record
    assert transform_pool(decoded) == transform_pool(records)


def test_unknown_class_has_no_decode_type():
    assert all_records_type("VGPU") is None


def _raw_answers(records: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Each class's get_all_records answer decoded as the cold sync does: ref → raw JSON."""
    return {
        cls: decode_jsonrpc_response(
            orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": records.get(cls, {})}),
            RAW_RECORDS_TYPE,
        )
        for cls in SYNCED_CLASSES
    }


def test_records_left_in_raw_json_give_the_same_objects():
    records = _sample_records_with_every_branch()
    raw = _raw_answers(records)
    assert all(type(r) is msgspec.Raw for r in raw["VM"].values())
    # Ids (a default template's is `<pool>-<uuid>`) and links come out the same.
    assert transform_pool(raw) == transform_pool(records)


def test_a_consuming_load_frees_each_class_and_gives_the_same_objects():
    records = _sample_records_with_every_branch()
    raw = _raw_answers(records)
    objects = PoolObjects()
    loaded = objects.load(raw, consume=True)
    assert raw == {}
    assert loaded == transform_pool(records)
    # Reloading a class from raw JSON changes nothing.
    vbds = _raw_answers(records)["VBD"]
    assert objects.reload_class("VBD", vbds) == {
        i: o for i, o in loaded.items() if o["type"] == "VBD"
    }
    assert objects.objects == loaded


def test_every_field_an_id_depends_on_is_decoded_in_the_id_pass():
    records = _sample_records_with_every_branch()
    objects = PoolObjects()
    for cls, by_ref in records.items():
        read: set[str] = set()
        for ref, record in by_ref.items():
            objects._id_for(cls.lower(), ref, _RecordingRecord(record, read))
        missing = read - {"uuid", *ID_FIELDS.get(cls, ())}
        assert not missing, f"{cls}: ids depend on {sorted(missing)}, not decoded"
