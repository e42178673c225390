"""`key=value` arguments → JSON-RPC params.

xo-cli's rules — `json:` prefix for any JSON value, `true`/`false` for booleans, `@=FILE` kept
client-side for `$getFrom`/`$sendTo` — plus numbers. When the method's params schema is known,
it decides: `name_label=123` stays a string for a string parameter, `force=yes` is refused for a
boolean one with the parameter's name, before anything is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from xod.cli.errors import UsageError

JSON_PREFIX = "json:"
FILE_KEY = "@"
_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$")


@dataclass
class CallArgs:
    params: dict[str, Any] = field(default_factory=dict)
    file: str | None = None  # the `@=FILE` argument


def _number(text: str) -> int | float | None:
    if not _NUMBER.match(text):
        return None
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _types(schema: dict[str, Any] | None) -> list[str]:
    if not isinstance(schema, dict):
        return []
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    return []


def parse_value(key: str, text: str, schema: dict[str, Any] | None = None) -> Any:
    if text.startswith(JSON_PREFIX):
        try:
            return orjson.loads(text[len(JSON_PREFIX) :])
        except orjson.JSONDecodeError as error:
            raise UsageError(f"{key}: invalid JSON after `json:` ({error})") from None
    types = _types(schema)
    if not types:
        if text in ("true", "false"):
            return text == "true"
        number = _number(text)
        return text if number is None else number
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    if "number" in types or "integer" in types:
        number = _number(text)
        if number is not None and ("number" in types or isinstance(number, int)):
            return number
    if "string" in types:
        return text
    if "null" in types and text == "null":
        return None
    expected = " or ".join(types)
    raise UsageError(f"{key}: expected {expected}, got {text!r} (use json: for other values)")


def parse_args(
    args: list[str], params_schema: dict[str, Any] | None = None, *, allow_file: bool = True
) -> CallArgs:
    parsed = CallArgs()
    for arg in args:
        key, sep, text = arg.partition("=")
        if not sep or not key:
            raise UsageError(f"expected key=value, got {arg!r}")
        if key == FILE_KEY and allow_file:
            parsed.file = text
            continue
        schema = None
        if params_schema is not None:
            schema = params_schema.get(key.removesuffix("?"))
        parsed.params[key] = parse_value(key, text, schema)
    return parsed
