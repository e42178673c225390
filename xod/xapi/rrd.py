"""`/rrd_updates` answers parsed into compact per-object series (pure, no I/O).

The JSON form (`json=true`) lists `meta.legend` entries `<CF>:<host|vm|sr>:<uuid>:<source>` and
rows newest first, every number a JSON string in current XAPI (`"0.0123"`, `"NaN"`), plain
numbers in some versions, and unquoted keys in XAPI before 23.31 (read after quoting them).
Rows are turned oldest first; each column becomes an `array('d')` (8 bytes a value, NaN for a
missing one), so a host's whole answer stays small while it is cached.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

# `{meta: {start: 1, …` (XAPI < 23.31) → `{"meta": {"start": 1, …`; bare NaN / Infinity too.
_BARE_KEY = re.compile(rb"([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:")
_BARE_NUMBER = re.compile(rb"(?<![\"\w])(-?Infinity|NaN)(?![\"\w])")

# (kind, uuid) → data source name → values, oldest first.
Series = dict[tuple[str, str], dict[str, "array[float]"]]


class RrdFormatError(ValueError):
    """The answer is not an `/rrd_updates` JSON document."""


@dataclass(slots=True)
class RrdUpdates:
    step: int
    end: int  # time of the newest row (unix seconds)
    timestamps: list[int] = field(default_factory=list)  # oldest first
    series: Series = field(default_factory=dict)

    def of(self, kind: str, uuid: str) -> dict[str, array[float]]:
        """One object's data sources (empty if the answer has none for it)."""
        return self.series.get((kind, uuid), {})


def _decode(body: bytes | bytearray) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    quoted = _BARE_KEY.sub(rb'\1"\2":', bytes(body))
    quoted = _BARE_NUMBER.sub(rb'"\1"', quoted)
    try:
        return orjson.loads(quoted)
    except orjson.JSONDecodeError as error:
        raise RrdFormatError(f"not an rrd_updates JSON answer: {error}") from None


def to_float(value: Any) -> float:
    """A value as sent (string or number); NaN for what is not a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def parse_rrd_updates(
    body: bytes | bytearray, keep: Callable[[str, str], bool] | None = None
) -> RrdUpdates:
    """Parse an answer; `keep(kind, uuid)` selects the objects kept (all by default)."""
    document = _decode(body)
    try:
        meta = document["meta"]
        legend = meta["legend"]
        rows = document["data"]
        updates = RrdUpdates(step=int(to_float(meta["step"])), end=int(to_float(meta["end"])))
    except (KeyError, TypeError, ValueError):
        raise RrdFormatError("rrd_updates answer without meta.step/end/legend or data") from None
    if isinstance(legend, str):  # a one-entry legend may come as a bare string
        legend = [legend]
    columns: list[tuple[int, array[float]]] = []
    for index, entry in enumerate(legend):
        parts = str(entry).split(":", 3)
        if len(parts) != 4:
            continue
        _cf, kind, uuid, name = parts
        if keep is not None and not keep(kind, uuid):
            continue
        values: array[float] = array("d")
        updates.series.setdefault((kind, uuid), {})[name] = values
        columns.append((index, values))
    if isinstance(rows, dict):
        rows = [rows]
    for row in reversed(rows):  # newest first on the wire
        try:
            updates.timestamps.append(int(to_float(row["t"])))
            cells = row["values"]
        except (KeyError, TypeError, ValueError):
            raise RrdFormatError("rrd_updates row without t/values") from None
        if not isinstance(cells, list):
            cells = [cells]
        for index, values in columns:
            values.append(to_float(cells[index]) if index < len(cells) else math.nan)
    return updates
