"""Bounds on live changes: `all` batches split into bounded frames, a per-connection
subscription cap, unchanged projections not re-sent, a big response to a paused client, and a
watchdog that survives a failing pass."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.api.harness import RpcError, connect
from tests.api.live_support import (
    decode,
    is_changes,
    next_message,
    pool_and_xod,
    set_vm,
    small_buffer_client,
    user_vms,
    wait_until,
)
from xod.server.aiohttp_edge import writing_paused


async def test_a_big_all_batch_is_split_into_bounded_frames(tmp_path: Path) -> None:
    limit = 6 * 1024
    async with (
        pool_and_xod(tmp_path, vms=20, notification_frame_bytes=limit) as (sim, app),
        connect(app) as watcher,
    ):
        await watcher.sign_in()
        renamed = {set_vm(sim, ref, name_label=f"split-{ref[-6:]}") for ref in user_vms(sim)}
        received: set[str] = set()
        frames = 0
        while received < renamed:
            raw = await asyncio.wait_for(watcher.ws.recv(), 5)
            message = decode(raw)
            if message.get("method") == "all" and message["params"]["type"] == "enter":
                frames += 1
                assert len(raw) <= limit  # one VM is far smaller: none goes alone
                received |= set(message["params"]["items"])
        assert frames > 1

        # A reload changes the bound for the next batches.
        app.apply_limits(notification_frame_bytes=1024 * 1024)
        renamed = {set_vm(sim, ref, name_label=f"whole-{ref[-6:]}") for ref in user_vms(sim)}
        message = await next_message(watcher, lambda m: m.get("method") == "all")
        assert set(message["params"]["items"]) >= renamed


async def test_subscriptions_per_connection_are_capped(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path) as (_sim, app), connect(app) as client:
        await client.sign_in()
        app.fanout.config.max_subscriptions_per_connection = 3
        ids = [
            (await client.call("xod.subscribe", {"filter": {"type": kind}}))["subscription"]
            for kind in ("VM", "host", "SR")
        ]
        with pytest.raises(RpcError) as raised:
            await client.call("xod.subscribe", {"filter": {"type": "network"}})
        assert raised.value.code == 429
        assert raised.value.data == {"code": "TOO_MANY_SUBSCRIPTIONS", "limit": 3}
        assert "too many subscriptions" in raised.value.error["message"]
        # Another connection has its own allowance; freeing one makes room again.
        async with connect(app) as other:
            await other.sign_in()
            await other.call("xod.subscribe", {"filter": {"type": "network"}})
        assert await client.call("xod.unsubscribe", {"subscription": ids[0]}) is True
        await client.call("xod.subscribe", {"filter": {"type": "network"}})


async def test_unchanged_projection_is_not_sent_again(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path) as (sim, app), connect(app) as client:
        await client.sign_in()
        await client.call("xod.setAllNotifications", {"enabled": False})
        result = await client.call(
            "xod.subscribe", {"filter": {"type": "VM"}, "fields": ["id", "name_label"]}
        )
        subscription = result["subscription"]
        await next_message(client, is_changes(subscription))  # the snapshot
        refs = sorted(user_vms(sim))
        # A field outside the projection changes: the cache has a new object, the subscriber
        # would get the same projection again — nothing is sent.
        revision = app.objects.revision
        set_vm(sim, refs[0], name_description="not projected")
        await wait_until(lambda: app.objects.revision > revision)
        with pytest.raises(TimeoutError):
            await next_message(client, is_changes(subscription), timeout=0.3)
        renamed = set_vm(sim, refs[0], name_label="projected")
        message = await next_message(client, is_changes(subscription))
        assert message["params"]["enter"] == {renamed: {"id": renamed, "name_label": "projected"}}


async def test_a_response_bigger_than_the_limit_reaches_a_paused_client(tmp_path: Path) -> None:
    budget = 8 * 1024
    async with pool_and_xod(
        tmp_path, vms=12, client_budget_bytes=budget, ws_write_buffer_high=4096,
        ws_send_buffer=4096,
    ) as (sim, app):  # fmt: skip
        client, sock = await small_buffer_client(app)
        await client.sign_in()
        port = sock.getsockname()[1]
        peer = next(
            p for p in app.fanout.peers if p.transport.get_extra_info("peername")[1] == port
        )
        refs = sorted(user_vms(sim))
        round_ = 0
        while not writing_paused(peer.protocol):  # changes fill the socket: the transport pauses
            round_ += 1
            for ref in refs:
                set_vm(sim, ref, name_label=f"fill-{round_}-{ref[-6:]}")
            await asyncio.sleep(0.06)
            assert round_ < 100
        expected = dict(app.objects.objects)
        await client.ws.send(
            orjson.dumps({"jsonrpc": "2.0", "id": 7, "method": "xo.getAllObjects"}).decode()
        )
        # The response alone is over twice the budget: queued whole, the client kept.
        await wait_until(lambda: peer.closed or peer.queued_bytes > 2 * budget)
        assert not peer.closed, peer.close_reason
        async with asyncio.timeout(10):
            while True:
                message = decode(await client.ws.recv())
                if message.get("id") == 7:
                    break
        assert set(message["result"]) == set(expected)
        await client.ws.close()
        sock.close()


async def test_watchdog_survives_a_failing_pass(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path, bookmark_interval=0.3) as (_sim, app), connect(app) as client:
        await client.sign_in()
        fanout = app.fanout
        real_bookmarks = fanout._bookmarks
        failures: list[Any] = []

        def failing_once(now: float) -> None:
            if not failures:
                failures.append(now)
                raise RuntimeError("one bad pass")
            real_bookmarks(now)

        fanout._bookmarks = failing_once  # type: ignore[method-assign]  # a fault injected for the test
        subscription = (await client.call("xod.subscribe", {"filter": {"type": "pool"}}))[
            "subscription"
        ]
        await next_message(client, is_changes(subscription))  # snapshot
        # Bookmarks keep coming after the failed pass: the watchdog is still running.
        await wait_until(lambda: bool(failures), 3)
        bookmark = await next_message(client, is_changes(subscription), timeout=3)
        assert bookmark["params"]["enter"] == {} and bookmark["params"]["exit"] == []
        assert not fanout._watchdog.done()
