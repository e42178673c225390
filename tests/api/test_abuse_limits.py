"""What one client (often not signed in) can make xod do: password checks, batch sizes, calls at
once, pending downloads, log lines. Real sockets against a running xod."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import orjson
import pytest

from tests.api.harness import ADMIN_EMAIL, Client, RpcError, connect, running_xod
from xod.api.context import CallContext
from xod.api.dispatch import MAX_BATCH

TOO_FAST = "too fast authentication tries"


def _sign_in(request_id: int, email: str, password: str = "wrong") -> dict[str, Any]:
    return {
        "id": request_id,
        "jsonrpc": "2.0",
        "method": "session.signIn",
        "params": {"email": email, "password": password},
    }


async def _replies(client: Client, count: int) -> list[dict[str, Any]]:
    """The next `count` responses, whether they come one per frame or in batch frames."""
    replies: list[dict[str, Any]] = []
    while len(replies) < count:
        frame = orjson.loads(await asyncio.wait_for(client.ws.recv(), 10))
        replies.extend(frame if isinstance(frame, list) else [frame])
    return replies


def _outcomes(replies: list[dict[str, Any]]) -> list[Any]:
    return [3 if r["error"]["code"] == 3 else _throttled(r["error"]) for r in replies]


def _throttled(error: dict[str, Any]) -> str:
    # The message ends with the wait ("…: retry in 2 s"), which depends on the clock.
    return TOO_FAST if error["message"].startswith(TOO_FAST) else error["message"]


async def test_concurrent_and_batched_guesses_get_one_password_check(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as guesser:
        # 30 frames at once for one account: one is checked, every other one is throttled.
        for request_id in range(30):
            await guesser.send_raw(orjson.dumps(_sign_in(request_id, ADMIN_EMAIL)))
        outcomes = _outcomes(await _replies(guesser, 30))
        assert sorted(outcomes, key=str) == [3] + [TOO_FAST] * 29

        # The same in one batch, for another account.
        batch = [_sign_in(request_id, "other@x.test") for request_id in range(30)]
        await guesser.send_raw(orjson.dumps(batch))
        outcomes = _outcomes(await _replies(guesser, 30))
        assert sorted(outcomes, key=str) == [3] + [TOO_FAST] * 29

    # Many accounts at once from one address: 5 failures cost nothing, the 6th earns a delay
    # (xod/store/throttle.py), and every attempt after it is throttled.
    async with running_xod(tmp_path / "second") as app, connect(app) as guesser:
        batch = [_sign_in(i, f"user{i}@x.test") for i in range(20)]
        await guesser.send_raw(orjson.dumps(batch))
        outcomes = _outcomes(await _replies(guesser, 20))
        assert sorted(outcomes, key=str) == [3] * 6 + [TOO_FAST] * 14


async def test_batch_size_is_capped_in_json_and_msgpack(tmp_path: Path) -> None:
    call = {"jsonrpc": "2.0", "method": "system.getMethodsInfo"}
    too_big = [{**call, "id": i} for i in range(MAX_BATCH + 1)]
    largest = [{**call, "id": i} for i in range(MAX_BATCH)]
    async with running_xod(tmp_path) as app:
        async with connect(app) as client:
            await client.send_raw(orjson.dumps(too_big))
            frame = await asyncio.wait_for(client.ws.recv(), 5)
            rejected = orjson.loads(frame)
            assert rejected["id"] is None and rejected["error"]["code"] == -32600
            assert f"at most {MAX_BATCH} calls" in rejected["error"]["message"]
            assert len(frame) < 200  # not a hundred copies of the methods' descriptions
            await client.send_raw(orjson.dumps(largest))
            replies = orjson.loads(await asyncio.wait_for(client.ws.recv(), 5))
            assert sorted(r["id"] for r in replies) == list(range(MAX_BATCH))

        # The msgpack subprotocol goes through the same batch handling.
        async with connect(app, subprotocols=["xod.msgpack"]) as client:
            await client.ws.send(msgpack.packb(too_big))
            rejected = msgpack.unpackb(await asyncio.wait_for(client.ws.recv(), 5))
            assert rejected["error"]["code"] == -32600
            await client.ws.send(msgpack.packb(largest[:2]))
            replies = msgpack.unpackb(await asyncio.wait_for(client.ws.recv(), 5))
            assert [r["id"] for r in replies] == [0, 1]
            assert all(r["result"]["system.getVersion"] for r in replies)
            await client.ws.send(b"\xc1")  # never valid msgpack
            broken = msgpack.unpackb(await asyncio.wait_for(client.ws.recv(), 5))
            assert broken["error"]["code"] == -32700 and broken["id"] is None


async def test_batch_entries_count_against_the_calls_at_once(tmp_path: Path) -> None:
    async with running_xod(tmp_path, max_concurrent_calls=3) as app, connect(app) as client:
        # Instrument one method to see how many of its calls run at the same time.
        method = app.registry.get("system.getVersion")
        assert method is not None
        original = method.handler
        running = 0
        most = 0

        async def counting(ctx: CallContext, params: dict[str, Any]) -> Any:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.02)
            running -= 1
            return await original(ctx, params)

        method.handler = counting
        call = {"jsonrpc": "2.0", "method": "system.getVersion"}
        await client.send_raw(orjson.dumps([{**call, "id": i} for i in range(10)]))
        await client.send_raw(orjson.dumps([{**call, "id": i} for i in range(10, 15)]))
        assert len(await _replies(client, 15)) == 15
        assert most == 3


async def test_pending_downloads_are_capped_per_user(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path) as app,
        connect(app) as admin,
        connect(app) as other,
        aiohttp.ClientSession() as http,
    ):
        oneshot = app.services.oneshot
        oneshot.limit = 10
        await admin.sign_in()
        for email in ("o@x.test", "t@x.test"):
            await admin.call("user.create", {"email": email, "password": "pw"})
        await other.sign_in("o@x.test", "pw")

        async def download_url(client: Client) -> str:
            return (await client.call("xo.getAllObjects", {"ndjson": True}))["$getFrom"]

        others = await download_url(other)
        mine = [await download_url(admin) for _ in range(oneshot.per_owner + 4)]
        # Asking for more drops the caller's own oldest, never another user's.
        async with http.get(f"{app.url}{mine[0]}") as response:
            assert response.status == 404
        async with http.get(f"{app.url}{mine[-1]}") as response:
            assert response.status == 200
        async with http.get(f"{app.url}{others}") as response:
            assert response.status == 200

        # When every slot is taken, a new download is refused instead of evicting one.
        async with connect(app) as third:
            await third.sign_in("t@x.test", "pw")
            await download_url(third)
            await download_url(third)
            await download_url(third)
            with pytest.raises(RpcError) as raised:
                await download_url(third)
            assert "pending" in raised.value.error["message"]


async def test_unknown_method_names_are_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="xod.api.calls")
    async with running_xod(tmp_path) as app, connect(app) as client:
        with pytest.raises(RpcError):
            await client.call("x" * 5000)
        await client.call("system.getVersion")
    calls = [r for r in caplog.records if r.name == "xod.api.calls"]
    assert [(r.method, r.outcome) for r in calls] == [  # type: ignore[attr-defined]  # the call log's extra fields
        ("(unknown)", "error -32601"),
        ("system.getVersion", "success"),
    ]
    assert all(hasattr(r, "duration") and hasattr(r, "user") for r in calls)
