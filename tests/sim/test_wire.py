"""The simulator's wire codec: xapi's exact XML-RPC / JSON-RPC shapes (pure, no sockets)."""

from __future__ import annotations

import xmlrpc.client

import orjson
import pytest

from xod.sim.values import DateTime, Int32
from xod.sim.wire import (
    JsonRpcRequest,
    WireError,
    decode_jsonrpc_request,
    decode_xmlrpc_request,
    encode_jsonrpc_failure,
    encode_jsonrpc_success,
    encode_xmlrpc_failure,
    encode_xmlrpc_raw,
    encode_xmlrpc_success,
    xmlrpc_value,
)

ENVELOPE_HEAD = (
    '<?xml version="1.0"?><methodResponse><params><param><value><struct>'
    "<member><name>Status</name><value>Success</value></member><member><name>Value</name>"
)
ENVELOPE_TAIL = "</member></struct></value></param></params></methodResponse>"


def test_success_envelope_is_one_compact_line() -> None:
    body = encode_xmlrpc_success("OpaqueRef:abc")
    assert body.decode() == f"{ENVELOPE_HEAD}<value>OpaqueRef:abc</value>{ENVELOPE_TAIL}"
    assert b"\n" not in body and b"> <" not in body
    (result,), method = xmlrpc.client.loads(body)
    assert method is None
    assert result == {"Status": "Success", "Value": "OpaqueRef:abc"}


def test_failure_envelope_carries_the_description_as_strings() -> None:
    body = encode_xmlrpc_failure(["HANDLE_INVALID", "VM", "OpaqueRef:x"])
    assert (
        "<member><name>ErrorDescription</name><value><array><data><value>HANDLE_INVALID</value>"
        "<value>VM</value><value>OpaqueRef:x</value></data></array></value></member>"
    ) in body.decode()
    assert b"<fault>" not in body
    (result,), _ = xmlrpc.client.loads(body)
    assert result == {
        "Status": "Failure",
        "ErrorDescription": ["HANDLE_INVALID", "VM", "OpaqueRef:x"],
    }


def test_ints_are_untyped_and_never_i8() -> None:
    assert xmlrpc_value(4294967296) == "<value>4294967296</value>"
    assert xmlrpc_value(-3) == "<value>-3</value>"
    assert "<i8>" not in xmlrpc_value({"big": 2**62, "list": [1, 2**40]})


def test_int32_is_the_only_i4() -> None:
    counts = {"vm": Int32(12), "task": Int32(0)}
    assert xmlrpc_value(counts) == (
        "<value><struct><member><name>vm</name><value><i4>12</i4></value></member>"
        "<member><name>task</name><value><i4>0</i4></value></member></struct></value>"
    )


def test_bool_double_datetime_and_void() -> None:
    assert xmlrpc_value(True) == "<value><boolean>1</boolean></value>"
    assert xmlrpc_value(False) == "<value><boolean>0</boolean></value>"
    assert xmlrpc_value(1.0) == "<value><double>1</double></value>"
    assert xmlrpc_value(0.1) == "<value><double>0.1</double></value>"
    assert xmlrpc_value(60.25) == "<value><double>60.25</double></value>"
    assert (
        xmlrpc_value(DateTime("20240101T00:00:00Z"))
        == "<value><dateTime.iso8601>20240101T00:00:00Z</dateTime.iso8601></value>"
    )
    assert xmlrpc_value(None) == "<value></value>"
    assert "<nil/>" not in xmlrpc_value([None, {"a": None}])


def test_datetime_parses_back_as_stdlib_datetime_with_raw_value() -> None:
    body = encode_xmlrpc_success({"created": DateTime("20240102T03:04:05Z")})
    (result,), _ = xmlrpc.client.loads(body)
    created = result["Value"]["created"]
    assert isinstance(created, xmlrpc.client.DateTime)
    assert created.value == "20240102T03:04:05Z"


def test_string_escaping_and_control_characters() -> None:
    assert xmlrpc_value('a<b>&"c') == "<value>a&lt;b&gt;&amp;&quot;c</value>"
    assert xmlrpc_value("tab\tline\ncr\rbell\x07nul\x00") == (
        "<value>tab\tline\ncr\rbellnul</value>"
    )
    # Struct member names go out as they are (ocaml-rpc does not escape them).
    assert "<name>k&x</name>" in xmlrpc_value({"k&x": "v"})
    # Round trip through a real parser for a string that needs escaping.
    (result,), _ = xmlrpc.client.loads(encode_xmlrpc_success("x < y & z"))
    assert result["Value"] == "x < y & z"


def test_empty_containers_and_nesting() -> None:
    assert xmlrpc_value([]) == "<value><array><data></data></array></value>"
    assert xmlrpc_value({}) == "<value><struct></struct></value>"
    nested = {"a": [{"b": ["c", 1, 2.5, True]}], "d": {}}
    (result,), _ = xmlrpc.client.loads(encode_xmlrpc_success(nested))
    # Untyped ints come back as strings, the way every XML-RPC client of xapi sees them.
    assert result["Value"] == {"a": [{"b": ["c", "1", 2.5, True]}], "d": {}}


def test_raw_response_has_no_envelope() -> None:
    body = encode_xmlrpc_raw(["VM.get_all", "session.login_with_password"])
    assert body.decode() == (
        '<?xml version="1.0"?><methodResponse><params><param><value><array><data>'
        "<value>VM.get_all</value><value>session.login_with_password</value>"
        "</data></array></value></param></params></methodResponse>"
    )


def test_decode_request_as_python_xmlrpc_sends_it() -> None:
    body = xmlrpc.client.dumps(
        (
            "OpaqueRef:s",
            "OpaqueRef:vm",
            False,
            None,
            3,
            1.5,
            xmlrpc.client.DateTime("20240101T00:00:00Z"),
            {"k": ["v"]},
        ),
        "VM.start",
        allow_none=True,
    ).encode()
    method, params = decode_xmlrpc_request(body)
    assert method == "VM.start"
    assert params[:6] == ["OpaqueRef:s", "OpaqueRef:vm", False, None, 3, 1.5]
    assert isinstance(params[6], DateTime) and params[6] == "20240101T00:00:00Z"
    assert params[7] == {"k": ["v"]}


def test_decode_request_accepts_untyped_and_i8_values() -> None:
    body = (
        b"<?xml version='1.0'?><methodCall><methodName>VM.set_memory</methodName><params>"
        b"<param><value>OpaqueRef:s</value></param><param><value><i8>4294967296</i8></value></param>"
        b"</params></methodCall>"
    )
    assert decode_xmlrpc_request(body) == ("VM.set_memory", ["OpaqueRef:s", 4294967296])


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<methodCall><methodName>x</methodName><params>",
        encode_xmlrpc_success("a response, not a call"),
    ],
)
def test_decode_garbage_raises_wire_error(body: bytes) -> None:
    with pytest.raises(WireError):
        decode_xmlrpc_request(body)


def test_decode_jsonrpc_v1_and_v2() -> None:
    v1 = decode_jsonrpc_request(b'{"method":"VM.get_all","params":["OpaqueRef:s"],"id":7}')
    assert v1 == JsonRpcRequest("VM.get_all", ["OpaqueRef:s"], 7, 1)
    v2 = decode_jsonrpc_request(b'{"jsonrpc":"2.0","method":"VM.get_all","params":["s"],"id":"x"}')
    assert v2 == JsonRpcRequest("VM.get_all", ["s"], "x", 2)
    no_params = decode_jsonrpc_request(b'{"jsonrpc":"2.0","method":"system.listMethods","id":0}')
    assert no_params.params == []
    by_name = decode_jsonrpc_request(b'{"jsonrpc":"2.0","method":"m","params":{"a":1},"id":0}')
    assert by_name.params == [{"a": 1}]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"method":"VM.get_all","params":[]}',  # no id
        b'{"params":[],"id":1}',  # no method
        b'{"method":"VM.get_all","id":1}',  # v1 requires params
        b'{"method":"VM.get_all","params":"s","id":1}',
    ],
)
def test_decode_jsonrpc_garbage_raises_wire_error(body: bytes) -> None:
    with pytest.raises(WireError):
        decode_jsonrpc_request(body)


def test_jsonrpc_envelopes() -> None:
    v1 = JsonRpcRequest("m", [], 7, 1)
    v2 = JsonRpcRequest("m", [], 0, 2)
    assert encode_jsonrpc_success(v1, ["a"]) == b'{"result":["a"],"error":null,"id":7}'
    assert encode_jsonrpc_success(v2, "a") == b'{"jsonrpc":"2.0","result":"a","id":0}'
    assert (
        encode_jsonrpc_failure(v1, ["SESSION_INVALID", "OpaqueRef:dead"])
        == b'{"result":null,"error":["SESSION_INVALID","OpaqueRef:dead"],"id":7}'
    )
    assert orjson.loads(encode_jsonrpc_failure(v2, ["SESSION_INVALID", "OpaqueRef:dead"])) == {
        "jsonrpc": "2.0",
        "error": {"code": 1, "message": "SESSION_INVALID", "data": ["OpaqueRef:dead"]},
        "id": 0,
    }


def test_jsonrpc_carries_marker_types_as_plain_json() -> None:
    v2 = JsonRpcRequest("m", [], 1, 2)
    value = {"created": DateTime("20240101T00:00:00Z"), "count": Int32(3), "mem": 2**40, "f": 1.0}
    assert orjson.loads(encode_jsonrpc_success(v2, value))["result"] == {
        "created": "20240101T00:00:00Z",
        "count": 3,
        "mem": 2**40,
        "f": 1.0,
    }
    # Maps keyed by ints (rare) still encode, with stringified keys.
    assert orjson.loads(encode_jsonrpc_success(v2, {0: 0.5}))["result"] == {"0": 0.5}
