"""What a request may look like once decoded (xod/api/requests.py): nesting bounded, string keys,
finite numbers, no binary — for JSON and msgpack alike, answered in the protocol's format with
the request id kept. Real sockets against a running xod."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgpack
import orjson

from tests.api.harness import Client, connect, running_xod
from xod.api.requests import MAX_NESTING

NESTING_MESSAGE = f"must not nest more than {MAX_NESTING} levels deep"


def _nested_json(depth: int, key: str = "a") -> str:
    return f'{{"{key}":' * depth + "null" + "}" * depth


def _call_json(request_id: Any, method: str, params_json: str) -> str:
    head = orjson.dumps({"id": request_id, "jsonrpc": "2.0", "method": method}).decode()
    return f'{head[:-1]},"params":{params_json}}}'


async def _reply(client: Client) -> Any:
    data = await asyncio.wait_for(client.ws.recv(), 10)
    return msgpack.unpackb(data) if isinstance(data, bytes) else orjson.loads(data)


async def _ask(client: Client, frame: str | bytes) -> Any:
    await client.ws.send(frame)
    return await _reply(client)


def _nesting_error(reply: dict[str, Any], request_id: Any, instance_path: str) -> None:
    assert reply["id"] == request_id, reply
    error = reply["error"]
    assert error["code"] == 10 and NESTING_MESSAGE in error["message"], error
    [entry] = error["data"]["errors"]
    assert entry["instancePath"] == instance_path and entry["message"] == NESTING_MESSAGE
    assert entry["keyword"] == "maxDepth" and entry["params"] == {"limit": MAX_NESTING}


async def test_deep_params_get_invalid_parameters_for_every_method(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as client:
        # The issue's cases: a 1000-deep object signing in, a 300-deep subscription filter.
        reply = await _ask(
            client,
            _call_json(
                1, "session.signInWithPassword", f'{{"email":{_nested_json(1000)},"password":"x"}}'
            ),
        )
        path_at_limit = "/email" + "/a" * (MAX_NESTING - 2)
        _nesting_error(reply, 1, path_at_limit)
        reply = await _ask(client, _call_json("f", "xod.subscribe", _nested_json(300, "filter")))
        _nesting_error(reply, "f", "/filter" * (MAX_NESTING - 1))
        # Every method, signed in or not, answers the same before anything else looks at it.
        await client.sign_in()
        too_deep = "[" * MAX_NESTING + "]" * MAX_NESTING  # under the request and params
        for request_id, method in enumerate(app.registry.names()):
            frame = _call_json(request_id, method, f'{{"id":{too_deep}}}')
            _nesting_error(await _ask(client, frame), request_id, "/id" + "/0" * (MAX_NESTING - 2))
        # Beyond what orjson parses at all: the same limit is named, the id is lost.
        reply = await _ask(client, _call_json(5, "xo.getAllObjects", _nested_json(1100)))
        assert reply["id"] is None and reply["error"]["code"] == -32600
        assert NESTING_MESSAGE in reply["error"]["message"]
        # Nesting up to the limit is served: a deep but legitimate filter.
        depth_allowed = MAX_NESTING - 3  # request, params, filter
        filter_json = (
            '{"$and":[' * (depth_allowed // 2) + '{"type":"VM"}' + "]}" * (depth_allowed // 2)
        )
        reply = await _ask(client, _call_json(6, "xo.getAllObjects", f'{{"filter":{filter_json}}}'))
        assert reply == {"id": 6, "jsonrpc": "2.0", "result": {}}


async def test_msgpack_frames_hold_json_values_only(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app, subprotocols=["xod.msgpack"]) as client:

        async def ask(message: Any) -> Any:
            return await _ask(client, msgpack.packb(message))

        def call(request_id: int, params: Any, method: str = "xo.getAllObjects") -> Any:
            return {"id": request_id, "jsonrpc": "2.0", "method": method, "params": params}

        await client.ws.send(msgpack.packb(call(0, {"email": "admin@example.test"}, "x.y")))
        assert (await _reply(client))["error"]["code"] == -32601
        cases = [
            (call(1, {b"x": 1}), "", "object keys must be strings"),
            (call(2, {"limit": float("inf")}), "/limit", "must be a finite number"),
            (call(3, {"limit": float("nan")}), "/limit", "must be a finite number"),
            (call(4, {"filter": {"a": [b"\x00"]}}), "/filter/a/0", "not binary data"),
            (call(5, {"filter": msgpack.ExtType(3, b"")}), "/filter", "msgpack extension"),
            (call(6, {"filter": {7: "x"}}), "/filter", "object keys must be strings"),
        ]
        for message, instance_path, problem in cases:
            reply = await ask(message)
            assert reply["id"] == message["id"], reply
            error = reply["error"]
            assert error["code"] == 10 and problem in error["message"], error
            assert error["data"]["errors"][0]["instancePath"] == instance_path
        # Outside params: an invalid request, still with its id when the id is well-formed.
        reply = await ask({"id": 9, "method": "xo.getAllObjects", 1: 2})
        assert reply["id"] == 9 and reply["error"]["code"] == -32600
        assert "object keys must be strings" in reply["error"]["message"]
        reply = await ask({"id": float("nan"), "method": "xo.getAllObjects"})
        assert reply["id"] is None and reply["error"]["code"] == -32600
        # Beyond msgpack's own decoding depth.
        head = msgpack.packb({"id": 1, "method": "xo.getAllObjects"})
        deep = bytes([head[0] + 1]) + head[1:] + msgpack.packb("params") + b"\x91" * 2000 + b"\xc0"
        reply = await _ask(client, deep)
        assert reply["error"]["code"] == -32600 and NESTING_MESSAGE in reply["error"]["message"]
        # A batch: each entry answered on its own; a malformed notification gets no answer.
        version = call(11, {}, "system.getServerVersion")
        batch = [call(10, {"limit": float("inf")}), version, {"method": "x", "params": b""}]
        replies = {r["id"]: r for r in await ask(batch)}
        assert set(replies) == {10, 11}
        assert replies[10]["error"]["code"] == 10 and replies[11]["result"] == app.config.version


async def test_json_cannot_carry_non_finite_numbers(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as client:
        for number in ("NaN", "Infinity", "-Infinity", "1e400"):
            reply = await _ask(client, _call_json(1, "xo.getAllObjects", f'{{"limit":{number}}}'))
            assert reply["error"]["code"] == -32700, reply
