"""XAPI wire codecs, pure (no I/O): JSON-RPC v2 and XML-RPC requests and responses, the XML-RPC
value fragments that task results carry, and the JSON-RPC → XML-RPC fallback decision.

The shapes are xapi's own: `tests/xapi/test_codec.py` pins each one (result envelopes, data
types, task results)."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from functools import lru_cache
from itertools import count
from typing import Any, TypedDict

import msgspec
import orjson

from xod.xapi.errors import ProtocolError, XapiError

JSON_CONTENT_TYPE = "application/json"
XML_CONTENT_TYPE = "text/xml"
# The reference XAPI uses for "no object" (a VM not resident anywhere, no affinity…).
NULL_REF = "OpaqueRef:NULL"

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_request_ids = count(1)


# ---------------------------------------------------------------------------------- JSON-RPC


def encode_jsonrpc_request(method: str, params: list[Any], request_id: int | None = None) -> bytes:
    if request_id is None:
        request_id = next(_request_ids)
    return orjson.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params},
        option=orjson.OPT_NON_STR_KEYS,
    )


def decode_jsonrpc_response(body: bytes | bytearray, result_type: Any = None) -> Any:
    """The call's result; raises XapiError for an XAPI failure (v2 object or v1 array form).

    With a `result_type` (a msgspec-decodable type, e.g. `dict[str, SomeTypedDict]`), the
    result is decoded straight into it: fields a TypedDict/Struct does not list are skipped
    without being allocated, which makes big `get_all_records` answers several times cheaper
    in CPU and in transient memory."""
    if result_type is not None:
        return _decode_typed(body, _envelope_decoder(result_type))
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ProtocolError(f"invalid JSON-RPC response: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError("invalid JSON-RPC response: not an object")
    failure = message.get("error")
    if failure is not None:
        _raise_failure(failure)
    if "result" not in message:
        raise ProtocolError("invalid JSON-RPC response: neither result nor error")
    return message["result"]


def _raise_failure(error: Any) -> None:
    if isinstance(error, dict):
        data = error.get("data")
        params = data if isinstance(data, list) else []
        raise XapiError.from_description([str(error.get("message", "INTERNAL_ERROR")), *params])
    raise XapiError.from_description(error)


@lru_cache(maxsize=64)
def _envelope_decoder(result_type: Any) -> msgspec.json.Decoder[Any]:
    # `result` absent (UNSET) is told apart from a null one (a v1 failure carries
    # `"result": null` beside its error); `error` stays generic.
    envelope = msgspec.defstruct(
        "JsonRpcResponse",
        [
            ("result", result_type | None | msgspec.UnsetType, msgspec.UNSET),
            ("error", Any, None),
        ],
    )
    return msgspec.json.Decoder(envelope)


def _decode_typed(body: bytes | bytearray, decoder: msgspec.json.Decoder[Any]) -> Any:
    try:
        message = decoder.decode(body)
    except msgspec.DecodeError as error:  # also ValidationError (its subclass)
        raise ProtocolError(f"invalid JSON-RPC response: {error}") from None
    if message.error is not None:
        _raise_failure(message.error)
    if message.result is msgspec.UNSET:
        raise ProtocolError("invalid JSON-RPC response: neither result nor error")
    return message.result


# event.from replies: each event's snapshot is kept as raw JSON (a view into the body) until its
# class is known, then decoded with that class's record type.
_Event = TypedDict(
    "_Event",
    {
        "id": Any,
        "timestamp": Any,
        "class": str,
        "operation": str,
        "ref": str,
        "snapshot": msgspec.Raw,
    },
    total=False,
)


class _EventBatch(TypedDict, total=False):
    events: list[_Event]
    valid_ref_counts: dict[str, Any]
    token: str


@lru_cache(maxsize=64)
def _snapshot_decoder(record_type: Any) -> msgspec.json.Decoder[Any]:
    # A deleted object's snapshot may be null.
    return msgspec.json.Decoder(record_type | None)


def decode_event_batch(
    body: bytes | bytearray, snapshot_types: Mapping[str, Any]
) -> dict[str, Any]:
    """An `event.from` JSON-RPC answer whose snapshots are decoded per class: with
    `snapshot_types[event class]` (lower-case class name → record type) when listed, as plain
    values otherwise. Same shape as the untyped result."""
    batch = _decode_typed(body, _envelope_decoder(_EventBatch))
    if not isinstance(batch, dict):
        raise ProtocolError("invalid event.from result: not an object")
    for event in batch.get("events", ()):
        raw = event.get("snapshot")
        if raw is None:
            continue
        record_type = snapshot_types.get(event.get("class", "").lower(), Any)
        try:
            event["snapshot"] = _snapshot_decoder(record_type).decode(raw)
        except msgspec.DecodeError as error:
            raise ProtocolError(f"invalid event.from snapshot: {error}") from None
    return batch


def jsonrpc_unsupported(status: int, content_type: str | None) -> bool:
    """Whether a host's answer to `POST /jsonrpc` means it does not speak JSON-RPC, so the client
    should switch to XML-RPC: a 404, or a 2xx whose content-type is not exactly
    `application/json` (the npm xen-api client's rule; xapi sends it without charset)."""
    if status == 404:
        return True
    return 200 <= status < 300 and content_type != JSON_CONTENT_TYPE


# ---------------------------------------------------------------------------------- XML-RPC out


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _encode_value(value: Any, out: list[str]) -> None:
    # bool before int: bool is an int subclass.
    if isinstance(value, str):
        out.append(f"<value><string>{_escape(value)}</string></value>")
    elif isinstance(value, bool):
        out.append(f"<value><boolean>{int(value)}</boolean></value>")
    elif isinstance(value, int):
        # xapi accepts int64 as a decimal string; <int> is only defined for 32 bits.
        if _INT32_MIN <= value <= _INT32_MAX:
            out.append(f"<value><int>{value}</int></value>")
        else:
            out.append(f"<value><string>{value}</string></value>")
    elif isinstance(value, float):
        out.append(f"<value><double>{value!r}</double></value>")
    elif value is None:
        out.append("<value><nil/></value>")
    elif isinstance(value, dict):
        out.append("<value><struct>")
        for key, member in value.items():
            out.append(f"<member><name>{_escape(str(key))}</name>")
            _encode_value(member, out)
            out.append("</member>")
        out.append("</struct></value>")
    elif isinstance(value, list | tuple | set | frozenset):
        out.append("<value><array><data>")
        for item in value:
            _encode_value(item, out)
        out.append("</data></array></value>")
    elif isinstance(value, bytes):
        out.append(f"<value><base64>{base64.b64encode(value).decode()}</base64></value>")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as XML-RPC")


def encode_xmlrpc_request(method: str, params: list[Any]) -> bytes:
    out = [
        '<?xml version="1.0"?><methodCall><methodName>',
        _escape(method),
        "</methodName><params>",
    ]
    for param in params:
        out.append("<param>")
        _encode_value(param, out)
        out.append("</param>")
    out.append("</params></methodCall>")
    return "".join(out).encode()


def encode_xmlrpc_value(value: Any) -> str:
    """One `<value>…</value>` fragment (the form of a task's `result` field)."""
    out: list[str] = []
    _encode_value(value, out)
    return "".join(out)


# ---------------------------------------------------------------------------------- XML-RPC in


def _decode_value(element: ET.Element) -> Any:
    """Decode a `<value>` element. xapi sends strings and ints untyped (`<value>text</value>`),
    which XML-RPC defines as strings: ints therefore arrive as decimal strings."""
    typed = None
    for child in element:
        typed = child
        break
    if typed is None:
        return element.text or ""
    tag = typed.tag
    if tag == "string":
        return typed.text or ""
    if tag == "struct":
        result = {}
        for member in typed:
            name = member.find("name")
            value = member.find("value")
            if name is None or value is None:
                raise ProtocolError("invalid XML-RPC struct member")
            result[name.text or ""] = _decode_value(value)
        return result
    if tag == "array":
        data = typed.find("data")
        return [] if data is None else [_decode_value(item) for item in data]
    if tag in ("int", "i4", "i8"):
        return int((typed.text or "0").strip())
    if tag == "boolean":
        return (typed.text or "").strip() == "1"
    if tag == "double":
        return float((typed.text or "0").strip())
    if tag == "dateTime.iso8601":
        return (typed.text or "").strip()
    if tag == "nil":
        return None
    if tag == "base64":
        return base64.b64decode(typed.text or "")
    raise ProtocolError(f"unknown XML-RPC type <{tag}>")


def _parse(body: bytes | bytearray | str) -> ET.Element:
    try:
        return ET.fromstring(body)
    except ET.ParseError as error:
        raise ProtocolError(f"invalid XML-RPC document: {error}") from None


def decode_xmlrpc_response(body: bytes | bytearray) -> Any:
    """The call's `Value`; raises XapiError for `Status: Failure`. A response without the
    Status/Value wrapper (system.listMethods) is returned as is."""
    root = _parse(body)
    if root.tag != "methodResponse":
        raise ProtocolError(f"invalid XML-RPC response: root <{root.tag}>")
    value = root.find("params/param/value")
    if value is None:
        fault = root.find("fault/value")
        if fault is not None:
            raise ProtocolError(f"XML-RPC fault: {_decode_value(fault)!r}")
        raise ProtocolError("invalid XML-RPC response: no value")
    decoded = _decode_value(value)
    if not (isinstance(decoded, dict) and "Status" in decoded):
        return decoded
    if decoded["Status"] == "Success":
        if "Value" not in decoded:
            raise ProtocolError("XML-RPC Success without Value")
        return decoded["Value"]
    raise XapiError.from_description(decoded.get("ErrorDescription"))


def decode_xmlrpc_fragment(fragment: str) -> Any:
    """A task's `result`: the XML-RPC fragment of the return value (`<value>OpaqueRef:x</value>`
    → "OpaqueRef:x", `<value></value>` → ""). An empty string (no fragment) → None."""
    if not fragment or not fragment.strip():
        return None
    root = _parse(fragment)
    if root.tag != "value":
        raise ProtocolError(f"task result is not an XML-RPC value: <{root.tag}>")
    return _decode_value(root)
