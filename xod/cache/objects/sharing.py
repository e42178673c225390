"""Memory savings shared by every transform: one copy of equal values, shared key tables.

Objects are immutable (values.py), so equal maps and lists can be the same object, and objects
of one type can share one dict key table.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson

from xod.cache.objects.values import EMPTY_LIST, EMPTY_MAP, XoObject

# One copy of each distinct value that many objects hold (a boot order, a CPUs map, memory
# sizes…). Values are told apart by their JSON form, so only values clients cannot tell apart
# are merged (`true` and `1` are not), and only with values of the same kind (one table per
# kind). A table is emptied when full, which bounds it whatever the churn: later equal values
# are merged again from then on.
_SHARED_LIMIT = 4096
_shared_maps: dict[bytes, dict[str, Any]] = {}
_shared_lists: dict[bytes, list[Any]] = {}
_Value = TypeVar("_Value", dict[str, Any], list[Any])


def _shared(table: dict[bytes, _Value], value: _Value) -> _Value:
    try:
        key = orjson.dumps(value)
    except TypeError:  # not JSON (a non-string map key…): kept as is
        return value
    kept = table.get(key)
    if kept is None:
        if len(table) >= _SHARED_LIMIT:
            table.clear()
        # A copy: whoever made `value` (a test's record…) may still change it.
        kept = table[key] = value.copy()
    return kept


def shared_map(value: Any) -> dict[str, Any]:
    """A map many objects may hold with the same content (XAPI map fields, CPUs, memory)."""
    return _shared(_shared_maps, value) if value else EMPTY_MAP


def shared_list(value: Any) -> list[Any]:
    return _shared(_shared_lists, value) if value else EMPTY_LIST


class _Shape:
    """Objects of one type, whose instances only lend their `__dict__`."""


_SHAPES: dict[str, type[_Shape]] = {}
# CPython shares one key table between instance dicts of up to 30 keys.
_SHARED_KEYS_MAX = 30


def compact(obj: XoObject) -> XoObject:
    """The same object in a dict sharing its key table with the other objects of its type
    (CPython's key-sharing instance dicts, filled in the same key order): a VBD's 14 keys then
    cost ~220 bytes, not ~470. Bigger objects (VMs, hosts) are returned as they are."""
    if len(obj) > _SHARED_KEYS_MAX:
        return obj
    object_type = obj["type"]
    shape = _SHAPES.get(object_type)
    if shape is None:
        shape = _SHAPES[object_type] = type(f"_Shape_{object_type}", (_Shape,), {})
    shared = shape().__dict__
    # Key by key (from the items), as `update(dict)` would copy the key table.
    shared.update(obj.items())
    return shared
