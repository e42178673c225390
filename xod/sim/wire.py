"""The simulator's wire codec (pure, no I/O): XML-RPC and JSON-RPC requests in, xapi-shaped
responses out.

XML-RPC output mimics ocaml-rpc in non-strict mode, the serialiser xapi uses: one line, no
whitespace between tags, strings and 64-bit ints as untyped `<value>text</value>`, `<i4>` only for
`Int32`, never `<i8>`, never `<fault>`. Real clients depend on those details (XO's parser fails on
whitespace text nodes and on `<i8>`), so they are not a matter of taste.
"""

from __future__ import annotations

import re
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from xod.sim.values import DateTime, Int32


class WireError(ValueError):
    """A request that cannot be parsed at all: xapi answers those with HTTP 500, not an envelope."""


# ---------------------------------------------------------------------------------------------
# XML-RPC: requests

_XML_PROLOGUE = '<?xml version="1.0"?>'


def decode_xmlrpc_request(body: bytes) -> tuple[str, list[Any]]:
    """`(method, params)` of a `<methodCall>`; raises WireError for anything else."""
    try:
        params, method = xmlrpc.client.loads(body)
    except Exception as exc:  # expat and xmlrpc raise a zoo of types for malformed input
        raise WireError(f"unparsable XML-RPC request: {exc}") from exc
    if not isinstance(method, str) or not method:
        raise WireError("XML-RPC body is not a methodCall")
    return method, [_from_xmlrpc(p) for p in params]


def _from_xmlrpc(value: Any) -> Any:
    # stdlib hands datetimes over as its own DateTime and base64 as Binary; the pool only knows
    # plain values, so convert them (recursively, requests are small).
    if isinstance(value, xmlrpc.client.DateTime):
        return DateTime(value.value)
    if isinstance(value, list):
        return [_from_xmlrpc(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_xmlrpc(v) for k, v in value.items()}
    if isinstance(value, xmlrpc.client.Binary):
        return value.data.decode("utf-8", "replace")
    return value


# ---------------------------------------------------------------------------------------------
# XML-RPC: responses

# ocaml-rpc escapes these four and silently drops control characters XML 1.0 cannot carry.
_NEEDS_ESCAPE = re.compile(r'[<>&"\x00-\x08\x0b\x0c\x0e-\x1f]')
_ESCAPES: dict[int, str | None] = {
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord("&"): "&amp;",
    ord('"'): "&quot;",
    **{c: None for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)},
}


def _escape(text: str) -> str:
    return text.translate(_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


# Scalars format to a complete `<value>` string; containers recurse. Records are dicts of mostly
# scalars, so the dict loop formats each member in one f-string (the hot path of a big
# get_all_records over XML-RPC).


def _fmt_str(value: str) -> str:
    return f"<value>{_escape(value)}</value>"


def _fmt_int(value: int) -> str:
    # xapi's int is 64-bit and goes out untyped: clients see a decimal string.
    return f"<value>{int(value)}</value>"


def _fmt_int32(value: int) -> str:
    return f"<value><i4>{int(value)}</i4></value>"


def _fmt_bool(value: bool) -> str:
    return "<value><boolean>1</boolean></value>" if value else "<value><boolean>0</boolean></value>"


def _fmt_float(value: float) -> str:
    return f"<value><double>{value:.16g}</double></value>"


def _fmt_datetime(value: str) -> str:
    return f"<value><dateTime.iso8601>{_escape(str(value))}</dateTime.iso8601></value>"


def _fmt_stdlib_datetime(value: xmlrpc.client.DateTime) -> str:
    return _fmt_datetime(value.value)


def _fmt_none(_value: None) -> str:
    # ocaml-rpc has no nil in non-strict output; xapi's void is the empty string.
    return "<value></value>"


_Formatter = Callable[[Any], str]

_SCALARS: dict[type, _Formatter] = {
    str: _fmt_str,
    int: _fmt_int,
    Int32: _fmt_int32,
    bool: _fmt_bool,
    float: _fmt_float,
    DateTime: _fmt_datetime,
    xmlrpc.client.DateTime: _fmt_stdlib_datetime,
    type(None): _fmt_none,
}

# For subclasses of the plain types; order matters: DateTime is a str, Int32 and bool are ints.
_SUBCLASS_SCALARS: tuple[tuple[type, _Formatter], ...] = (
    (DateTime, _fmt_datetime),
    (Int32, _fmt_int32),
    (bool, _fmt_bool),
    (str, _fmt_str),
    (int, _fmt_int),
    (float, _fmt_float),
)


def _encode_into(value: Any, out: list[str]) -> None:
    kind = type(value)
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        out.append(scalar(value))
    elif kind is dict or (kind is not list and kind is not tuple and isinstance(value, dict)):
        _encode_dict(value, out)
    elif kind is list or kind is tuple or isinstance(value, list | tuple):
        _encode_list(value, out)
    else:
        for base, formatter in _SUBCLASS_SCALARS:
            if isinstance(value, base):
                out.append(formatter(value))
                return
        out.append(_fmt_str(str(value)))


def _encode_list(value: list[Any] | tuple[Any, ...], out: list[str]) -> None:
    append = out.append
    append("<value><array><data>")
    for item in value:
        scalar = _SCALARS.get(type(item))
        if scalar is not None:
            append(scalar(item))
        else:
            _encode_into(item, out)
    append("</data></array></value>")


def _encode_dict(value: dict[Any, Any], out: list[str]) -> None:
    append = out.append
    append("<value><struct>")
    # Member names go out unescaped, as ocaml-rpc does.
    for key, item in value.items():
        scalar = _SCALARS.get(type(item))
        if scalar is not None:
            append(f"<member><name>{key}</name>{scalar(item)}</member>")
        else:
            append(f"<member><name>{key}</name>")
            _encode_into(item, out)
            append("</member>")
    append("</struct></value>")


def xmlrpc_value(value: Any) -> str:
    """The `<value>…</value>` fragment of one value, as xapi writes it (also a task's `result`)."""
    out: list[str] = []
    _encode_into(value, out)
    return "".join(out)


def _response(parts: list[str]) -> bytes:
    return "".join(parts).encode("utf-8", "replace")


def encode_xmlrpc_success(value: Any) -> bytes:
    """`{Status: Success, Value: value}` as a methodResponse."""
    out = [
        _XML_PROLOGUE,
        "<methodResponse><params><param><value><struct>"
        "<member><name>Status</name><value>Success</value></member>"
        "<member><name>Value</name>",
    ]
    _encode_into(value, out)
    out.append("</member></struct></value></param></params></methodResponse>")
    return _response(out)


def encode_xmlrpc_failure(description: list[str]) -> bytes:
    """`{Status: Failure, ErrorDescription: [CODE, params…]}` as a methodResponse."""
    out = [
        _XML_PROLOGUE,
        "<methodResponse><params><param><value><struct>"
        "<member><name>Status</name><value>Failure</value></member>"
        "<member><name>ErrorDescription</name>",
    ]
    _encode_into([str(d) for d in description], out)
    out.append("</member></struct></value></param></params></methodResponse>")
    return _response(out)


def encode_xmlrpc_raw(value: Any) -> bytes:
    """A methodResponse without the Status envelope (what `system.listMethods` answers)."""
    out = [_XML_PROLOGUE, "<methodResponse><params><param>"]
    _encode_into(value, out)
    out.append("</param></params></methodResponse>")
    return _response(out)


# ---------------------------------------------------------------------------------------------
# JSON-RPC


_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class JsonRpcRequest:
    method: str
    params: list[Any]
    id: Any
    version: int  # 1 or 2


def decode_jsonrpc_request(body: bytes) -> JsonRpcRequest:
    """Parse a JSON-RPC v1/v2 call as xapi does; WireError where xapi answers HTTP 500."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"unparsable JSON-RPC request: {exc}") from exc
    if not isinstance(doc, dict):
        raise WireError("JSON-RPC request is not an object")
    method = doc.get("method")
    if not isinstance(method, str) or not method:
        raise WireError("JSON-RPC request without a method")
    if "id" not in doc:
        raise WireError("JSON-RPC request without an id")
    version = 2 if doc.get("jsonrpc") == "2.0" else 1
    params = doc.get("params", _MISSING)
    if isinstance(params, list):
        pass
    elif version == 2 and params is _MISSING:
        params = []
    elif version == 2 and isinstance(params, dict):
        params = [params]  # a v2 by-name object is one struct parameter for xapi
    else:
        raise WireError("JSON-RPC params must be an array")
    return JsonRpcRequest(method=method, params=params, id=doc["id"], version=version)


def _dumps(document: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(document)
    except TypeError:
        # Rare: a map with non-string keys. Retrying only then keeps the hot path option-free.
        return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)


def encode_jsonrpc_success(request: JsonRpcRequest, value: Any) -> bytes:
    if request.version == 2:
        return _dumps({"jsonrpc": "2.0", "result": value, "id": request.id})
    return _dumps({"result": value, "error": None, "id": request.id})


def encode_jsonrpc_failure(request: JsonRpcRequest, description: list[str]) -> bytes:
    code, *params = [str(d) for d in description] or ["INTERNAL_ERROR"]
    if request.version == 2:
        # xapi always uses code 1; the XAPI code travels in `message`, its params in `data`.
        error = {"code": 1, "message": code, "data": params}
        return _dumps({"jsonrpc": "2.0", "error": error, "id": request.id})
    return _dumps({"result": None, "error": [code, *params], "id": request.id})
