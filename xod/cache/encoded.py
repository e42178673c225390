"""Each cached object's JSON, encoded on first demand and kept until the object changes (pure).

Listings (`xo.getAllObjects`, REST collections, subscription snapshots) write the same objects
again and again, and objects are immutable (replaced on change, xod/cache/objects/values.py):
their JSON is made once and the listings join stored bytes instead of encoding again. Only
listed objects pay for it (≈ their JSON size), so a daemon nobody lists from keeps nothing; a
change forgets the old bytes with the old object.

An entry keeps the object it was made from, and is used only for that very object: a copy or a
projection of it is encoded as usual, and no listener order can ever serve stale bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from xod.cache.store import ChangeBatch, ObjectStore


class EncodedObjects:
    """The stored JSON of a store's objects, by id."""

    __slots__ = ("_entries", "_objects")

    def __init__(self, store: ObjectStore) -> None:
        self._objects = store.objects
        # id → (the object, its JSON, the same JSON as an orjson fragment to splice it)
        self._entries: dict[str, tuple[Any, bytes, orjson.Fragment]] = {}
        store.subscribe(self._forget)

    def _forget(self, batch: ChangeBatch) -> None:
        entries = self._entries
        if entries:
            for object_id in batch.enter:
                entries.pop(object_id, None)
            for object_id in batch.exit:
                entries.pop(object_id, None)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes of JSON kept (without the objects' own headers)."""
        return sum(len(entry[1]) for entry in self._entries.values())

    def _entry(self, object_id: str, obj: Any) -> tuple[Any, bytes, orjson.Fragment]:
        entry = self._entries.get(object_id)
        if entry is not None and entry[0] is obj:
            return entry
        data = orjson.dumps(obj)
        if self._objects.get(object_id) is not obj:  # a copy, a projection: not kept
            return (obj, data, orjson.Fragment(data))
        # Kept as an exact-size copy: orjson's output keeps its whole work buffer's
        # allocation (≈ 8 KiB whatever the size), and the next call reuses the freed one.
        data = bytes(memoryview(data))
        entry = self._entries[object_id] = (obj, data, orjson.Fragment(data))
        return entry

    def json(self, object_id: str, obj: Any) -> bytes:
        """`obj`'s JSON: the stored bytes when `obj` is the store's object `object_id`."""
        return self._entry(object_id, obj)[1]

    def fragments(self, items: Iterable[tuple[str, Any]]) -> dict[str, orjson.Fragment]:
        """`{id: object, …}` with each object as its JSON, for orjson to write as is inside
        a bigger value (one pass, no parsing)."""
        entries = self._entries
        fragments: dict[str, orjson.Fragment] = {}
        for object_id, obj in items:
            entry = entries.get(object_id)
            if entry is None or entry[0] is not obj:
                entry = self._entry(object_id, obj)
            fragments[object_id] = entry[2]
        return fragments


class Prepared:
    """A method's result with a JSON form made on demand: `value` for the other wire formats
    (msgpack), `json()` for JSON — a value orjson writes without encoding objects again
    (`fragments`), in place of `value` (xod/server/frames.py)."""

    __slots__ = ("json", "value")

    def __init__(self, value: Any, json: Callable[[], Any]) -> None:
        self.value = value
        self.json = json
