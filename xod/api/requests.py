"""Decoding a request frame (JSON or msgpack) into JSON-shaped values, in one bounded walk.

What reaches the dispatcher and the handlers is what JSON can say: objects with string keys,
arrays, strings, finite numbers, booleans and null, nested at most `MAX_NESTING` levels. JSON
already rules out most of the rest (orjson refuses NaN, infinities and more than 1024 levels);
msgpack can carry binary, non-string keys, extension types and NaN, and both formats can nest
deep enough to exhaust the interpreter's recursion limit in the code that walks params later
(schema validation, filters). A request that breaks these rules is answered here, once, with an
error that says which rule and where:

- in `params`: XO's `invalid parameters` (code 10) with an Ajv-shaped `data.errors` entry, the
  way every other bad param is reported (xo-cli prints `instancePath` + `message`);
- elsewhere in the request (id, method, unknown members): JSON-RPC's -32600 invalid request.
- nested beyond what the decoders themselves take (1024 levels): -32600 naming the limit, with
  a null id (nothing of the request could be read).

The request id is kept whenever the id itself is well-formed. A batch is checked entry by
entry, so one bad entry does not cost the others their answer.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import orjson

from xod.api import errors

# Levels of arrays and objects one request may nest, the request object itself being the first.
# XO's deepest legitimate params (filters with a few `$or`/`$and` levels, vm.set's nested
# objects) stay well under 10; 32 leaves room and keeps every walk of params cheap and far from
# Python's recursion limit.
MAX_NESTING = 32

_NESTING_KEYWORD = "maxDepth"


class UndecodableFrame(Exception):
    """The frame is not JSON (or not msgpack on a msgpack connection): -32700."""


class RejectedRequest:
    """A request refused before dispatch; `reply` is its JSON-RPC error response (None for a
    notification, which gets none)."""

    __slots__ = ("reply",)

    def __init__(self, reply: dict[str, Any] | None) -> None:
        self.reply = reply


class _Malformed(Exception):
    """Where (the path, filled in while unwinding) a value breaks which rule."""

    def __init__(self, keyword: str, message: str) -> None:
        super().__init__(message)
        self.keyword = keyword
        self.message = message
        self.path: list[str | int] = []


def decode_json(data: str | bytes) -> Any:
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        if str(error).startswith("depth limit exceeded"):
            return RejectedRequest(error_response(None, _too_deep_request().to_json()))
        raise UndecodableFrame(str(error)) from None
    # orjson gives string keys and finite numbers only: what is left to check is the nesting,
    # which cannot exceed the limit when the whole frame opens fewer arrays and objects (most
    # frames: counted in C, no walk).
    array, obj = (b"[", b"{") if isinstance(data, bytes) else ("[", "{")
    if data.count(array) + data.count(obj) <= MAX_NESTING:  # type: ignore[arg-type]  # same type as data
        return message
    return check_frame(message)


def decode_msgpack(data: bytes) -> Any:
    try:
        # Non-string keys are decoded so that the check below can say what is wrong with them.
        message = msgpack.unpackb(data, strict_map_key=False)
    except msgpack.StackError:
        return RejectedRequest(error_response(None, _too_deep_request().to_json()))
    except Exception as error:  # msgpack's errors share no base class
        raise UndecodableFrame(str(error)) from None
    return check_frame(message)


def check_frame(message: Any) -> Any:
    """The decoded frame with every malformed request replaced by its `RejectedRequest`."""
    if isinstance(message, list):
        return [check_request(entry) for entry in message]
    return check_request(message)


def check_request(request: Any) -> Any:
    # Anything but an object is an invalid request the dispatcher answers without looking in.
    if type(request) is not dict:
        return request
    try:
        _check_container(request, 1)
    except _Malformed as problem:
        return RejectedRequest(_reply_to(request, problem))
    return request


def _check_container(container: dict[str, Any] | list[Any], depth: int) -> None:
    """Raise `_Malformed` at the first value JSON could not carry. `depth`: the nesting level
    of `container` (1 for the request object). Scalars are checked inline: most values are."""
    if depth > MAX_NESTING:
        raise _too_deep()
    is_object = type(container) is dict
    items = container.items() if is_object else enumerate(container)  # type: ignore[union-attr]  # is_object: a dict
    for key, item in items:
        if is_object and type(key) is not str:
            raise _Malformed("propertyNames", "object keys must be strings")
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        try:
            if kind is dict or kind is list:
                _check_container(item, depth + 1)
            elif kind is float:
                if not math.isfinite(item):
                    raise _Malformed("type", "must be a finite number")
            else:
                what = "binary data" if kind is bytes else "a msgpack extension type"
                raise _Malformed("type", f"must be a JSON value, not {what}")
        except _Malformed as problem:
            problem.path.append(key)
            raise


def _too_deep() -> _Malformed:
    return _Malformed(_NESTING_KEYWORD, f"must not nest more than {MAX_NESTING} levels deep")


def _too_deep_request() -> errors.ApiError:
    return errors.invalid_request(f"a request must not nest more than {MAX_NESTING} levels deep")


def _reply_to(request: dict[str, Any], problem: _Malformed) -> dict[str, Any] | None:
    if "id" not in request:
        return None  # a notification: answered by nothing, as every notification
    path = problem.path[::-1]
    request_id = request["id"]
    if path[:1] == ["id"] or not is_valid_id(request_id):
        request_id = None
    if path[:1] == ["params"]:
        instance_path = "".join(
            "/" + str(p).replace("~", "~0").replace("/", "~1") for p in path[1:]
        )
        limit = {"limit": MAX_NESTING} if problem.keyword == _NESTING_KEYWORD else {}
        entry = {
            "instancePath": instance_path,
            "schemaPath": "",
            "keyword": problem.keyword,
            "params": limit,
            "message": problem.message,
        }
        where = instance_path or "params"
        error = errors.invalid_parameters([entry], f"invalid parameters: {where} {problem.message}")
    else:
        where = "/".join(str(p) for p in path) or "the request"
        error = errors.invalid_request(f"invalid request: {where} {problem.message}")
    return error_response(request_id, error.to_json())


def is_valid_id(request_id: Any) -> bool:
    """JSON-RPC's id: a string, a number or null."""
    return request_id is None or (
        isinstance(request_id, (int, float, str)) and not isinstance(request_id, bool)
    )


def error_response(request_id: Any, error: dict[str, Any]) -> dict[str, Any]:
    return {"error": error, "id": request_id, "jsonrpc": "2.0"}
