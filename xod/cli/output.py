"""Writing JSON to stdout: pretty for people, one write per item, flushed as it goes."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import orjson

PRETTY = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def write(data: bytes) -> None:
    sys.stdout.buffer.write(data)


def flush() -> None:
    sys.stdout.buffer.flush()


def print_json(value: Any) -> None:
    write(orjson.dumps(value, option=PRETTY) + b"\n")
    flush()


class JsonArrayWriter:
    """A JSON array written element by element, so the first objects show before the last
    one arrives and memory stays flat whatever the pool size."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> JsonArrayWriter:
        write(b"[")
        return self

    def add(self, value: Any) -> None:
        write((b"\n" if self.count == 0 else b",\n") + orjson.dumps(value, option=PRETTY))
        self.count += 1
        if self.count % 100 == 0:
            flush()

    def __exit__(self, *exc_info: object) -> None:
        write(b"\n]\n" if self.count else b"]\n")
        flush()


def pick(obj: Mapping[str, Any], paths: list[str]) -> dict[str, Any]:
    """lodash `pick`: the listed (dotted) paths, nested as in the object; missing ones left out."""
    picked: dict[str, Any] = {}
    for path in paths:
        keys = path.split(".")
        value: Any = obj
        for key in keys:
            if not isinstance(value, Mapping) or key not in value:
                break
            value = value[key]
        else:
            target = picked
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            target[keys[-1]] = value
    return picked
