"""Read-your-writes per connection: an action answers as soon as XAPI has, the connection that
wrote sees its write on its next read (getAllObjects, subscription snapshot), other connections
are not held back, and `_waitForCache: true` brings back the answer that waits for the cache.

The simulator batches events slowly here (0.3 s, xapi's 50 ms made obvious), so a read that did
not wait for the cache would see the old value.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.harness import Client, RpcError, connect
from tests.api.live_support import is_changes, next_message
from tests.api.test_commands_support import Env, commands_env

SLOW_EVENTS = 0.3
WRITES = 20


@contextlib.asynccontextmanager
async def two_clients(tmp_path: Path) -> AsyncIterator[tuple[Env, Client]]:
    async with (
        commands_env(tmp_path, event_batch_delay=SLOW_EVENTS) as env,
        connect(env.app) as other,
    ):
        await other.sign_in()
        yield env, other


async def name_of(client: Client, vm_id: str) -> str:
    found = await client.call("xo.getAllObjects", {"filter": {"id": vm_id}})
    return found[vm_id]["name_label"]


async def test_the_writer_reads_its_own_writes_at_once(tmp_path: Path) -> None:
    async with two_clients(tmp_path) as (env, _other):
        vm_id = (await env.vm_in_state("Halted"))["id"]
        stale = 0
        for index in range(WRITES):
            await env.client.call("vm.set", {"id": vm_id, "name_label": f"write-{index}"})
            stale += await name_of(env.client, vm_id) != f"write-{index}"
        assert stale == 0


async def test_another_connection_is_not_held_back(tmp_path: Path) -> None:
    async with two_clients(tmp_path) as (env, other):
        vm_id = (await env.vm_in_state("Halted"))["id"]
        before = await name_of(other, vm_id)
        await env.client.call("vm.set", {"id": vm_id, "name_label": "renamed"})
        # The writer was answered before the cache shows it, and the other reader does not wait
        # for the writer's barrier: it gets the cache as it is.
        assert await name_of(other, vm_id) == before
        # The cache does catch up, for everyone (bounded wait).
        async with asyncio.timeout(5):
            while await name_of(other, vm_id) != "renamed":
                await asyncio.sleep(0.02)


async def test_the_writers_subscription_snapshot_shows_its_write(tmp_path: Path) -> None:
    async with two_clients(tmp_path) as (env, _other):
        vm_id = (await env.vm_in_state("Halted"))["id"]
        await env.client.call("xod.setAllNotifications", {"enabled": False})
        await env.client.call("vm.set", {"id": vm_id, "name_label": "subscribed"})
        result = await env.client.call(
            "xod.subscribe", {"filter": {"id": vm_id}, "fields": ["name_label"]}
        )
        message = await next_message(env.client, is_changes(result["subscription"]))
        assert message["params"]["enter"][vm_id]["name_label"] == "subscribed"


async def test_wait_for_cache_option_answers_once_everyone_sees_it(tmp_path: Path) -> None:
    async with two_clients(tmp_path) as (env, other):
        vm_id = (await env.vm_in_state("Halted"))["id"]
        for index in range(3):
            name = f"waited-{index}"
            params = {"id": vm_id, "name_label": name, "_waitForCache": True}
            assert await env.client.call("vm.set", params) is True
            # The answer came after the cache showed it: any connection reads it.
            assert await name_of(other, vm_id) == name


async def test_wait_for_cache_option_is_for_actions_only(tmp_path: Path) -> None:
    async with two_clients(tmp_path) as (env, _other):
        vm_id = (await env.vm_in_state("Halted"))["id"]
        for method, params in (
            ("xo.getAllObjects", {"_waitForCache": True}),
            ("vm.set", {"id": vm_id, "name_label": "x", "_waitForCache": "yes"}),
        ):
            with pytest.raises(RpcError) as raised:
                await env.client.call(method, params)
            assert raised.value.code == 10
            assert "_waitForCache" in raised.value.data["errors"][0]["message"]


async def test_a_burst_of_barriers_shares_its_injects(tmp_path: Path) -> None:
    """Every write leaves a barrier (one event.inject each, alone): a burst of them shares
    the inject in flight's successor, so the pool sees two, not one per write."""
    async with two_clients(tmp_path) as (env, _other):
        sync = env.app.pools.sync_of(env.server_id)
        log = env.sim.pool.call_log
        before = list(log).count("event.inject")
        async with asyncio.timeout(10):
            await asyncio.gather(*(sync.barrier() for _ in range(50)))
        assert list(log).count("event.inject") - before <= 2
        # Sequential barriers still each see the pool as it is when they start.
        await sync.barrier()
        assert list(log).count("event.inject") - before <= 3
