"""XAPI field values → XO values, and the types of XO objects (pure helpers, no state).

XO objects are plain dicts treated as frozen snapshots: a change builds a new dict, and empty or
equal maps and lists are shared between objects (`EMPTY_MAP`, `EMPTY_LIST`, sharing.py), so
nobody may mutate an object in place.
"""

from __future__ import annotations

import calendar
from functools import lru_cache
from typing import Any

import orjson

ONE_GIB = 1024**3

XoObject = dict[str, Any]
# id → new object, or None for an object that exits.
Changes = dict[str, XoObject | None]

# Shared empty containers (objects are immutable, see the module docstring).
EMPTY_MAP: dict[str, Any] = {}
EMPTY_LIST: list[Any] = []


def to_int(value: Any) -> int:
    """XAPI int → Python int (XML-RPC sends 64-bit ints as strings)."""
    return value if type(value) is int else int(value)


def to_number(value: Any) -> int | float | None:
    """JS `+value` for strings found in maps (`"100"`, `"0.5"`); integral values become ints."""
    if value is None:
        return None
    if type(value) is int:
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() else number


@lru_cache(maxsize=16384)
def _parse_timestamp(value: str) -> int | None:
    if len(value) >= 17 and value[8] == "T":
        try:
            seconds = calendar.timegm(
                (
                    int(value[0:4]),
                    int(value[4:6]),
                    int(value[6:8]),
                    int(value[9:11]),
                    int(value[12:14]),
                    int(value[15:17]),
                    0,
                    0,
                    0,
                )
            )
        except ValueError:
            return None
        return seconds or None
    number = to_number(value)
    if number is None:
        return None
    return int(number) or None


def to_timestamp(value: Any) -> int | None:
    """XAPI datetime (`YYYYMMDDTHH:MM:SSZ`) or numeric string → seconds; `None` for the epoch."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return _parse_timestamp(value)
    if isinstance(value, int | float):
        return int(value) or None
    return None


def as_map(value: Any) -> dict[str, Any]:
    """A map field, the shared empty map when empty or missing."""
    return value if value else EMPTY_MAP


def as_list(value: Any) -> list[Any]:
    """A list field, the shared empty list when empty or missing."""
    return value if value else EMPTY_LIST


def json_or_none(text: str | None) -> Any:
    """JSON kept in a string field (XO's own `xo:…` keys), None when absent or malformed."""
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
