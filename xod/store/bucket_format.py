"""How the shared state's rows are stored in its key-value bucket (xod/store/replicated.py):
a row's key (`<table>.<id>`), a unique value's claim key, and a row as a JSON value."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import orjson

PrimaryKey = tuple[Any, ...]  # a row's primary key values, in the key's column order


_PLAIN_ID = re.compile(r"[-_A-Za-z0-9]+")


def row_key(table: str, key: PrimaryKey) -> str:
    """`users.<id>`; a key of several columns, or with characters a bucket key may not hold,
    is `=` and the base64url of its JSON array."""
    if len(key) == 1 and isinstance(key[0], str) and _PLAIN_ID.fullmatch(key[0]):
        return f"{table}.{key[0]}"
    return f"{table}.={base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip('=')}"


def parse_row_key(key: str) -> tuple[str, PrimaryKey] | None:
    """(table, primary key) of a row's bucket key; None for a claim's."""
    table, _, encoded = key.partition(".")
    if not encoded or "." in encoded:
        return None
    if encoded.startswith("="):
        data = encoded[1:] + "=" * (-len(encoded[1:]) % 4)
        return table, tuple(orjson.loads(base64.urlsafe_b64decode(data)))
    return table, (encoded,)


def claim_key(table: str, column: str, value: Any) -> str:
    digest = hashlib.sha256(orjson.dumps(value)).hexdigest()
    return f"{table}.unique.{column}.{digest}"


def encode_row(row: dict[str, Any]) -> bytes:
    # SQLite values are None, int, float, str or bytes; bytes (the stores' JSON columns written
    # by orjson) become {"$bytes": base64}: JSON objects are no SQLite value otherwise.
    return orjson.dumps(
        {
            column: {"$bytes": base64.b64encode(value).decode()}
            if isinstance(value, bytes)
            else value
            for column, value in row.items()
        }
    )


def decode_row(data: bytes) -> dict[str, Any]:
    return {
        column: base64.b64decode(value["$bytes"]) if isinstance(value, dict) else value
        for column, value in orjson.loads(data).items()
    }


def encode_claim(row: str, at_ms: int) -> bytes:
    """A unique value's claim: the claiming row's key and when it was claimed."""
    return orjson.dumps({"row": row, "at": at_ms})


def decode_claim(data: bytes) -> tuple[str, int]:
    claim = orjson.loads(data)
    return claim["row"], claim["at"]
