"""The pure wire codecs against the exact shapes xapi sends: result envelopes, data types, task
results."""

from __future__ import annotations

import xmlrpc.client
from typing import Any, TypedDict

import orjson
import pytest

from xod.xapi.codec import (
    decode_event_batch,
    decode_jsonrpc_response,
    decode_xmlrpc_fragment,
    decode_xmlrpc_response,
    encode_jsonrpc_request,
    encode_xmlrpc_request,
    encode_xmlrpc_value,
    jsonrpc_unsupported,
)
from xod.xapi.errors import ProtocolError, TaskCancelled, XapiError
from xod.xapi.tasks import task_outcome


def xml_response(value_xml: str) -> bytes:
    return (
        '<?xml version="1.0"?><methodResponse><params><param><value>'
        + value_xml
        + "</value></param></params></methodResponse>"
    ).encode()


def test_jsonrpc_request_is_a_v2_envelope():
    body = encode_jsonrpc_request("VM.start", ["OpaqueRef:s", "OpaqueRef:vm", False, False], 7)
    assert orjson.loads(body) == {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "VM.start",
        "params": ["OpaqueRef:s", "OpaqueRef:vm", False, False],
    }


def test_jsonrpc_request_ids_differ_when_not_given():
    first = orjson.loads(encode_jsonrpc_request("a", []))["id"]
    second = orjson.loads(encode_jsonrpc_request("a", []))["id"]
    assert first != second


def test_jsonrpc_v2_success_and_failure():
    assert decode_jsonrpc_response(b'{"jsonrpc":"2.0","result":["OpaqueRef:a"],"id":0}') == [
        "OpaqueRef:a"
    ]
    with pytest.raises(XapiError) as failure:
        decode_jsonrpc_response(
            b'{"jsonrpc":"2.0","error":{"code":1,"message":"HANDLE_INVALID",'
            b'"data":["VM","OpaqueRef:x"]},"id":0}'
        )
    assert failure.value.code == "HANDLE_INVALID"
    assert failure.value.params == ["VM", "OpaqueRef:x"]
    assert str(failure.value) == "HANDLE_INVALID(VM, OpaqueRef:x)"


def test_jsonrpc_v1_failure_array():
    with pytest.raises(XapiError) as failure:
        decode_jsonrpc_response(b'{"result":null,"error":["SESSION_INVALID","OpaqueRef:d"],"id":1}')
    assert failure.value.code == "SESSION_INVALID"
    # A session id is a secret: it never appears in the message.
    assert "OpaqueRef:d" not in str(failure.value)
    assert "OpaqueRef:d" not in repr(failure.value)


def test_jsonrpc_garbage_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        decode_jsonrpc_response(b"<html>nope</html>")
    with pytest.raises(ProtocolError):
        decode_jsonrpc_response(b'{"jsonrpc":"2.0","id":0}')


@pytest.mark.parametrize(
    ("status", "content_type", "unsupported"),
    [
        (200, "application/json", False),
        (200, "text/xml", True),
        (200, "application/json; charset=utf-8", True),
        (200, None, True),
        (404, "text/html", True),
        (500, "text/html", False),  # an error of a host that speaks JSON-RPC: no fallback
    ],
)
def test_jsonrpc_fallback_decision(status, content_type, unsupported):
    assert jsonrpc_unsupported(status, content_type) is unsupported


def test_xmlrpc_request_round_trips_through_the_stdlib_parser():
    params = [
        "OpaqueRef:s",
        "a <b> & c",
        True,
        42,
        2**40,
        60.1,
        None,
        ["x", 1],
        {"live": "true", "n": 3},
    ]
    decoded, method = xmlrpc.client.loads(encode_xmlrpc_request("VM.pool_migrate", params))
    assert method == "VM.pool_migrate"
    # int64 travels as a decimal string (xapi accepts it; <int> is 32-bit only).
    assert list(decoded) == [
        "OpaqueRef:s",
        "a <b> & c",
        True,
        42,
        str(2**40),
        60.1,
        None,
        ["x", 1],
        {"live": "true", "n": 3},
    ]


def test_xmlrpc_success_with_xapi_typing():
    body = xml_response(
        "<struct><member><name>Status</name><value>Success</value></member>"
        "<member><name>Value</name><value><struct>"
        "<member><name>name_label</name><value>vm 1</value></member>"
        "<member><name>memory_static_max</name><value>4294967296</value></member>"
        "<member><name>is_a_template</name><value><boolean>0</boolean></value></member>"
        "<member><name>progress</name><value><double>0.5</double></value></member>"
        "<member><name>created</name><value><dateTime.iso8601>20240101T00:00:00Z"
        "</dateTime.iso8601></value></member>"
        "<member><name>count</name><value><i4>3</i4></value></member>"
        "<member><name>tags</name><value><array><data><value>a</value><value></value>"
        "</data></array></value></member>"
        "<member><name>empty</name><value><array><data></data></array></value></member>"
        "<member><name>other_config</name><value><struct></struct></value></member>"
        "</struct></value></member></struct>"
    )
    assert decode_xmlrpc_response(body) == {
        "name_label": "vm 1",
        "memory_static_max": "4294967296",  # untyped: ints arrive as strings in XML-RPC
        "is_a_template": False,
        "progress": 0.5,
        "created": "20240101T00:00:00Z",
        "count": 3,
        "tags": ["a", ""],
        "empty": [],
        "other_config": {},
    }


def test_xmlrpc_failure():
    body = xml_response(
        "<struct><member><name>Status</name><value>Failure</value></member>"
        "<member><name>ErrorDescription</name><value><array><data>"
        "<value>VM_BAD_POWER_STATE</value><value>OpaqueRef:vm</value><value>halted</value>"
        "<value>running</value></data></array></value></member></struct>"
    )
    with pytest.raises(XapiError) as failure:
        decode_xmlrpc_response(body)
    assert failure.value.code == "VM_BAD_POWER_STATE"
    assert failure.value.params == ["OpaqueRef:vm", "halted", "running"]


def test_xmlrpc_unwrapped_list_methods():
    body = xml_response(
        "<array><data><value>VM.get_all</value><value>host.get_all</value></data></array>"
    )
    assert decode_xmlrpc_response(body) == ["VM.get_all", "host.get_all"]


def test_xmlrpc_tolerates_pretty_printed_typed_values():
    body = xmlrpc.client.dumps(
        ({"Status": "Success", "Value": {"a": [1, "x"], "b": None}},),
        methodresponse=True,
        allow_none=True,
    ).encode()
    assert decode_xmlrpc_response(body) == {"a": [1, "x"], "b": None}


def test_xmlrpc_garbage_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        decode_xmlrpc_response(b"not xml")


@pytest.mark.parametrize(
    ("fragment", "value"),
    [
        ("<value>OpaqueRef:x</value>", "OpaqueRef:x"),
        ("<value></value>", ""),
        ("", None),
        (
            "<value><array><data><value>OpaqueRef:a</value><value>OpaqueRef:b</value>"
            "</data></array></value>",
            ["OpaqueRef:a", "OpaqueRef:b"],
        ),
        (
            "<value><struct><member><name>k</name><value><boolean>1</boolean></value>"
            "</member></struct></value>",
            {"k": True},
        ),
    ],
)
def test_task_result_fragments(fragment, value):
    assert decode_xmlrpc_fragment(fragment) == value


def test_value_fragment_round_trip():
    value = {"refs": ["OpaqueRef:a"], "ok": True, "ratio": 0.25}
    assert decode_xmlrpc_fragment(encode_xmlrpc_value(value)) == value


def test_task_outcomes():
    assert (
        task_outcome("OpaqueRef:t", {"status": "success", "result": "<value>OpaqueRef:v</value>"})
        == "OpaqueRef:v"
    )
    with pytest.raises(XapiError) as failure:
        task_outcome(
            "OpaqueRef:t",
            {"status": "failure", "error_info": ["VM_BAD_POWER_STATE", "r", "halted", "running"]},
        )
    assert not isinstance(failure.value, TaskCancelled)
    assert failure.value.params == ["r", "halted", "running"]
    with pytest.raises(TaskCancelled) as cancelled:
        task_outcome(
            "OpaqueRef:t", {"status": "cancelled", "error_info": ["TASK_CANCELLED", "OpaqueRef:t"]}
        )
    assert cancelled.value.code == "TASK_CANCELLED"
    with pytest.raises(TaskCancelled):
        task_outcome("OpaqueRef:t", {"status": "cancelled", "error_info": []})


class _NameOnly(TypedDict, total=False):
    name_label: Any


def _jsonrpc_result(result: Any) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": result})


def test_typed_jsonrpc_result_keeps_only_the_listed_fields():
    body = _jsonrpc_result({"OpaqueRef:a": {"name_label": "a", "other": {"big": [1, 2]}}})
    assert decode_jsonrpc_response(body, dict[str, _NameOnly]) == {
        "OpaqueRef:a": {"name_label": "a"}
    }
    # Without a type: everything, as before.
    assert decode_jsonrpc_response(body)["OpaqueRef:a"]["other"] == {"big": [1, 2]}


def test_typed_jsonrpc_failures_and_garbage():
    failure = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": 1, "message": "SESSION_INVALID", "data": ["x"]},
        }
    )
    with pytest.raises(XapiError) as caught:
        decode_jsonrpc_response(failure, dict[str, _NameOnly])
    assert caught.value.code == "SESSION_INVALID" and caught.value.params == ["x"]
    v1 = orjson.dumps({"id": 1, "result": None, "error": ["HOST_IS_SLAVE", "10.0.0.2"]})
    with pytest.raises(XapiError) as caught:
        decode_jsonrpc_response(v1, dict[str, _NameOnly])
    assert caught.value.code == "HOST_IS_SLAVE"
    for garbage in (b"{", b"[1]", b'{"jsonrpc": "2.0", "id": 1}', _jsonrpc_result([1, 2])):
        with pytest.raises(ProtocolError):
            decode_jsonrpc_response(garbage, dict[str, _NameOnly])


def test_event_batch_snapshots_are_decoded_per_class():
    body = _jsonrpc_result(
        {
            "events": [
                {"id": "1", "timestamp": "1.0", "class": "vm", "operation": "mod",
                 "ref": "OpaqueRef:a", "snapshot": {"name_label": "a", "platform": {"x": "1"}}},
                {"id": "2", "timestamp": "1.0", "class": "task", "operation": "add",
                 "ref": "OpaqueRef:t", "snapshot": {"name_label": "t", "status": "pending"}},
                {"id": "3", "timestamp": "1.0", "class": "vm", "operation": "del",
                 "ref": "OpaqueRef:b"},
                {"id": "4", "timestamp": "1.0", "class": "VM", "operation": "del",
                 "ref": "OpaqueRef:c", "snapshot": None},
            ],
            "valid_ref_counts": {"vm": 1, "task": 1},
            "token": "42,",
        }
    )  # fmt: skip
    batch = decode_event_batch(body, {"vm": _NameOnly})
    assert batch["token"] == "42,"
    assert batch["valid_ref_counts"] == {"vm": 1, "task": 1}
    vm, task, deleted, deleted_null = batch["events"]
    assert vm["snapshot"] == {"name_label": "a"}
    assert (vm["class"], vm["operation"], vm["ref"]) == ("vm", "mod", "OpaqueRef:a")
    # A class without a type keeps its whole snapshot.
    assert task["snapshot"] == {"name_label": "t", "status": "pending"}
    assert "snapshot" not in deleted
    assert deleted_null["snapshot"] is None
    # Same shape as the untyped decode, apart from the skipped fields.
    plain = decode_jsonrpc_response(body)
    assert [e["ref"] for e in plain["events"]] == [e["ref"] for e in batch["events"]]


def test_event_batch_failure_and_bad_snapshot():
    failure = orjson.dumps({"jsonrpc": "2.0", "id": 1, "error": {"message": "EVENTS_LOST"}})
    with pytest.raises(XapiError) as caught:
        decode_event_batch(failure, {})
    assert caught.value.code == "EVENTS_LOST"
    bad = _jsonrpc_result(
        {
            "events": [{"class": "vm", "operation": "mod", "ref": "r", "snapshot": [1]}],
            "token": "1,",
        }
    )
    with pytest.raises(ProtocolError):
        decode_event_batch(bad, {"vm": _NameOnly})
