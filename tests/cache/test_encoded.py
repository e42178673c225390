"""The stored JSON of cached objects (xod/cache/encoded.py): made on first demand, used only
for the very object it was made from, forgotten when the object changes or exits."""

from __future__ import annotations

import orjson

from xod.cache.store import ObjectStore


def vm(name: str) -> dict[str, object]:
    return {"id": "vm1", "type": "VM", "name_label": name, "$pool": "pool1"}


def test_made_once_kept_until_the_object_changes() -> None:
    store = ObjectStore()
    store.apply("pool1", {"vm1": vm("one"), "vdi1": {"id": "vdi1", "type": "VDI"}})
    encoded = store.encoded
    assert len(encoded) == 0
    first = store.get("vm1")
    data = encoded.json("vm1", first)
    assert orjson.loads(data) == first and encoded.json("vm1", first) is data
    assert len(encoded) == 1 and encoded.nbytes == len(data)
    # A copy (or a projection) of the object is encoded as it is, and not kept.
    copy = {**first, "name_label": "copy"}
    assert orjson.loads(encoded.json("vm1", copy))["name_label"] == "copy"
    assert encoded.json("vm1", first) is data
    store.apply("pool1", {"vm1": vm("two")})
    assert len(encoded) == 0  # the old version's bytes went with it
    assert orjson.loads(encoded.json("vm1", store.get("vm1")))["name_label"] == "two"
    # An old version still held by a listing is encoded as it is, never served as the new one.
    assert orjson.loads(encoded.json("vm1", first))["name_label"] == "one"
    store.apply("pool1", {"vm1": None})
    assert len(encoded) == 0


def test_fragments_are_the_objects_by_id() -> None:
    store = ObjectStore()
    store.apply("pool1", {"vm1": vm("one"), "vdi1": {"id": "vdi1", "type": "VDI"}})
    encoded = store.encoded
    written = orjson.dumps({"result": encoded.fragments(store.objects.items())})
    assert orjson.loads(written) == {"result": dict(store.objects)}
    assert orjson.dumps(encoded.fragments([])) == b"{}"
