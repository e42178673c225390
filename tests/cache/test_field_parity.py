"""Object field parity with Xen Orchestra 5.207.2, key for key.

`fixtures/xo-server-5.207.2-objects-seed1.json` is xo-server's own `xo.getAllObjects` on the
simulated pool built by `--hosts 3 --vms 12 --seed 1` (see fixtures/README.md), trimmed to one
object per distinct shape. xod, synced to the same pool, must produce exactly the same shapes
per object type: the same keys (keys XO leaves out absent, not null) with the same JSON types,
one level deep into structured fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from tests.api.test_commands_support import commands_env
from tests.cache.sample import build_sample_pool
from xod.cache.objects.pool import PoolObjects

FIXTURE = Path(__file__).parent / "fixtures" / "xo-server-5.207.2-objects-seed1.json"
SEEDED_POOL = {"hosts": 3, "vms": 12, "templates": 100, "seed": 1}
# Structured fields compared one level deep (free-form maps such as other_config are not).
STRUCTURED = frozenset({"template_info", "vulnerabilities", "chipset_info", "memory", "cpus"})

Shape = frozenset[tuple[str, str]]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shape(obj: Mapping[str, Any]) -> Shape:
    """Every key with its JSON type, and `key.sub` for the structured fields."""
    entries = []
    for key, value in obj.items():
        entries.append((key, json_type(value)))
        descend = key in STRUCTURED or (key == "CPUs" and obj["type"].startswith("VM"))
        if descend and isinstance(value, dict):
            entries.extend((f"{key}.{sub}", json_type(v)) for sub, v in value.items())
    return frozenset(entries)


def shapes_by_type(objects: Iterable[Mapping[str, Any]]) -> dict[str, set[Shape]]:
    shapes: dict[str, set[Shape]] = {}
    for obj in objects:
        shapes.setdefault(obj["type"], set()).add(shape(obj))
    return shapes


def describe(mine: set[Shape], theirs: set[Shape]) -> str:
    """What differs, readably: entries only xod has, and only XO has (over all shapes)."""
    ours = set().union(*mine) if mine else set()
    xo = set().union(*theirs) if theirs else set()
    return f"only xod: {sorted(ours - xo)}; only xo-server: {sorted(xo - ours)}"


async def test_objects_have_xo_server_keys_and_value_types(tmp_path: Path) -> None:
    expected = shapes_by_type(orjson.loads(FIXTURE.read_bytes()).values())
    async with commands_env(tmp_path, **SEEDED_POOL) as env:
        objects = await env.objects()
    actual = shapes_by_type(objects.values())
    assert set(actual) == set(expected)
    mismatched = {
        object_type: describe(actual[object_type], expected[object_type])
        for object_type in expected
        if actual[object_type] != expected[object_type]
    }
    assert mismatched == {}


def test_host_certificates_come_from_their_records() -> None:
    """XO shows a host's TLS certificates ({fingerprint, notAfter}); the simulator has none,
    real XCP-ng 8.2+ hosts have one: read from the Certificate records, renewals followed."""
    pool = build_sample_pool()
    cert_ref = pool.ref("cert0")
    pool.records["Certificate"] = {
        cert_ref: {
            "uuid": pool.uuid("cert0"),
            "host": pool.ref("host0"),
            "fingerprint": "AB:CD:EF",
            "not_after": "20300101T00:00:00Z",
        }
    }
    pool.record("host", "host0")["certificates"] = [cert_ref]
    objects = PoolObjects()
    loaded = objects.load(pool.records)
    host = loaded[pool.uuid("host0")]
    assert host["certificates"] == [{"fingerprint": "AB:CD:EF", "notAfter": 1893456000}]
    assert loaded[pool.uuid("host1")]["certificates"] == []
    renewed = {**pool.records["Certificate"][cert_ref], "fingerprint": "12:34"}
    event = {"class": "certificate", "operation": "mod", "ref": cert_ref, "snapshot": renewed}
    changes = objects.apply([event])
    renewed_host = changes[pool.uuid("host0")]
    assert renewed_host is not None
    assert renewed_host["certificates"][0]["fingerprint"] == "12:34"
