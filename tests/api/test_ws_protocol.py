"""JSON-RPC over `/api/` with a plain `websockets` client: framing and every error path, while
another client keeps being served."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
import websockets

from tests.api.harness import ADMIN_EMAIL, Client, RpcError, connect, running_xod
from xod.metrics import REGISTRY


async def _recv_frame(client: Client) -> object:
    return orjson.loads(await asyncio.wait_for(client.ws.recv(), 5))


async def test_framing_ids_params_notifications_batches(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as client:
        # Ids echoed verbatim: xo-lib's negative 53-bit integers, and strings.
        await client.send_raw(
            '{"id":-9007199254740991,"jsonrpc":"2.0","method":"system.getVersion"}'
        )
        assert await _recv_frame(client) == {
            "id": -9007199254740991,
            "jsonrpc": "2.0",
            "result": "0.1",
        }
        await client.send_raw(
            '{"id":"abc","jsonrpc":"2.0","method":"system.getVersion","params":{}}'
        )
        assert (await _recv_frame(client))["id"] == "abc"
        # A notification gets no reply; the next call's reply is the next frame.
        await client.send_raw('{"jsonrpc":"2.0","method":"system.getVersion"}')
        await client.send_raw('{"id":7,"jsonrpc":"2.0","method":"system.listMethods"}')
        reply = await _recv_frame(client)
        assert reply["id"] == 7 and "system.getMethodsInfo" in reply["result"]
        # A batch gets a proper batch response (notifications left out).
        unknown = {"method": "(unknown)", "outcome": "error -32601"}
        unknown_before = REGISTRY.get_sample_value("xod_rpc_calls_total", unknown) or 0
        await client.send_raw(
            '[{"id":1,"jsonrpc":"2.0","method":"system.getVersion"},'
            '{"jsonrpc":"2.0","method":"system.getVersion"},'
            '{"id":2,"jsonrpc":"2.0","method":"no.such"}]'
        )
        batch = await _recv_frame(client)
        assert isinstance(batch, list)
        assert sorted(r["id"] for r in batch) == [1, 2]
        assert next(r for r in batch if r["id"] == 2)["error"]["code"] == -32601
        # Counted for /metrics, a method that does not exist under one label only.
        assert REGISTRY.get_sample_value("xod_rpc_calls_total", unknown) == unknown_before + 1
        # Void results are `true`, never absent.
        await client.sign_in()
        assert await client.call("session.signOut") is True


async def test_error_paths_while_another_client_is_served(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path, max_incoming_message_bytes=64 * 1024) as app,
        connect(app) as bystander,
        connect(app) as client,
    ):
        await bystander.sign_in()

        async def keep_calling() -> int:
            calls = 0
            while not done.is_set():
                assert await bystander.call("session.getUser") is not None
                calls += 1
            return calls

        done = asyncio.Event()
        background = asyncio.create_task(keep_calling())

        await client.send_raw("{not json")
        assert await _recv_frame(client) == {
            "error": {"code": -32700, "message": "invalid JSON"},
            "id": None,
            "jsonrpc": "2.0",
        }

        with pytest.raises(RpcError) as raised:
            await client.call("foo.bar")
        assert raised.value.error == {
            "code": -32601,
            "message": "method not found: foo.bar",
            "data": "foo.bar",
        }

        with pytest.raises(RpcError) as raised:
            await client.call("xo.getAllObjects")
        assert raised.value.code == 2  # not signed in

        await client.sign_in()
        with pytest.raises(RpcError) as raised:
            await client.call("xo.getAllObjects", {"limit": "ten", "bogus": 1})
        assert raised.value.code == 10
        assert raised.value.error["message"] == "invalid parameters"
        assert {(e["instancePath"], e["keyword"]) for e in raised.value.data["errors"]} == {
            ("/limit", "type"),
            ("", "additionalProperties"),
        }

        # Insufficient permission: a read-only user calling an admin method.
        await client.call(
            "user.create", {"email": "reader@x.test", "password": "pw-reader", "permission": "read"}
        )
        await client.sign_in("reader@x.test", "pw-reader")
        with pytest.raises(RpcError) as raised:
            await client.call("user.getAll")
        assert raised.value.error == {
            "message": "not enough permissions",
            "code": 2,
            "data": {"permission": "admin", "object": {}},
        }
        assert isinstance(await client.call("xo.getAllObjects"), dict)

        # Oversized frame: the socket closes with 1009 and a reason; the bystander goes on.
        await client.send_raw('{"id":1,"method":"x","params":"' + "a" * 70_000 + '"}')
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await client.ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009
        assert closed.value.rcvd.reason

        done.set()
        assert await background > 0
        assert (await bystander.call("session.getUser"))["email"] == ADMIN_EMAIL


async def test_expired_token_closes_the_socket(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as client:
        await client.sign_in()
        token = await client.call("token.create", {"expiresIn": "1 minute"})
        # Age the token: it now expires in 0.5 s.
        soon = int(time.time() * 1000) + 500
        app.store.database.execute("UPDATE tokens SET expiration = ?", (soon,))
        async with connect(app) as token_client:
            user = await token_client.call("session.signIn", {"token": token})
            assert user["email"] == ADMIN_EMAIL
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(token_client.ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
        # An expired token no longer signs in.
        async with connect(app) as late:
            with pytest.raises(RpcError) as raised:
                await late.call("session.signIn", {"token": token})
            assert raised.value.code == 3


async def test_only_the_exact_api_path_upgrades(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app:
        for path in ("/api", "/api/?x=1", "/api/foo"):
            with pytest.raises(websockets.InvalidStatus):
                async with connect(app, path):
                    pass


async def test_calls_run_concurrently_and_answer_out_of_order(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as client:
        # A slow password sign-in (argon2 in a thread) does not hold back a quick call after it.
        frames = [
            {
                "id": 1,
                "jsonrpc": "2.0",
                "method": "session.signIn",
                "params": {"email": ADMIN_EMAIL, "password": "wrong"},
            },
            {"id": 2, "jsonrpc": "2.0", "method": "system.getVersion"},
        ]
        for frame in frames:
            await client.send_raw(orjson.dumps(frame))
        replies = [await _recv_frame(client), await _recv_frame(client)]
        assert {r["id"] for r in replies} == {1, 2}
        assert next(r for r in replies if r["id"] == 1)["error"]["code"] == 3


async def test_limits_change_on_a_running_server(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path, max_incoming_message_bytes=64 * 1024) as app,
        connect(app) as earlier,
    ):
        app.apply_limits(
            max_incoming_message_bytes=4096, client_budget_bytes=100_000, event_timeout=5.0
        )
        big_call = '{"id":1,"jsonrpc":"2.0","method":"system.getVersion","params":{"x":"%s"}}'
        big_call %= "a" * 10_000
        # A connection opened before keeps the limit it was opened with…
        await earlier.send_raw(big_call)
        assert (await _recv_frame(earlier))["id"] == 1
        # …a new one gets the new limit.
        async with connect(app) as later:
            await later.send_raw(big_call)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await later.ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        # The output budget applies to every connection at once.
        assert [peer.budget for peer in app.fanout.peers] == [100_000]
        assert app.pools.event_timeout == 5.0


async def test_unexpected_failures_show_details_to_admins_only(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as client:
        method = app.registry.get("system.getVersion")
        assert method is not None

        async def failing(ctx: object, params: object) -> object:
            raise RuntimeError("disk on fire")

        method.handler = failing
        with pytest.raises(RpcError) as raised:
            await client.call("system.getVersion")
        assert raised.value.error == {"code": -32000, "message": "unknown error from the peer"}
        await client.sign_in()
        with pytest.raises(RpcError) as raised:
            await client.call("system.getVersion")
        assert raised.value.error["message"] == "disk on fire"
        assert raised.value.data["name"] == "RuntimeError"
