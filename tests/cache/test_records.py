"""The per-class decode types: they list every field the transform reads, so decoding a JSON-RPC
answer into them changes nothing in the XO objects."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from tests.cache.sample import build_sample_pool
from xod.cache.objects import SYNCED_CLASSES, transform_pool
from xod.cache.records import RECORD_FIELDS, all_records_type
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
        self.read.add(key)  # type: ignore[arg-type]
        return super().__contains__(key)


def _sample_records_with_every_branch() -> dict[str, dict[str, dict]]:
    """The sample pool plus variants that take the transform's rarer branches."""
    records = copy.deepcopy(build_sample_pool().records)
    for cls, suffix, changes in (
        ("VM", "pv", {"domain_type": "unspecified", "HVM_boot_policy": ""}),
        ("host", "xenserver", {"software_version": {"product_brand": "XenServer"}}),
        ("VIF", "limited", {"qos_algorithm_type": "ratelimit"}),
        ("VDI", "unmanaged", {"managed": False}),
    ):
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
