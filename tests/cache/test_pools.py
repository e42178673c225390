"""Several pools at once, each with its own connection and status; tasks that vanish without an
event are noticed through `valid_ref_counts`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.cache.test_sync import FAST_CONNECTION, expected_objects, running_sync
from xod.cache.pools import PoolManager
from xod.cache.store import ObjectStore
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator


async def _until(predicate, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.02)


@pytest.fixture
async def two_sims() -> AsyncIterator[tuple[Simulator, Simulator]]:
    async with (
        Simulator(SimConfig(hosts=2, vms=10, templates=5, seed=1)) as first,
        Simulator(SimConfig(hosts=1, vms=8, templates=5, seed=2)) as second,
    ):
        yield first, second


def _user_vm(sim: Simulator) -> str:
    return next(
        ref
        for ref, record in sim.pool.records("VM").items()
        if not record["is_a_template"] and not record["is_control_domain"]
    )


async def test_two_pools_sync_side_by_side_and_fail_independently(two_sims):
    first, second = two_sims
    store = ObjectStore()
    manager = PoolManager(store, event_timeout=1.0, sync_options={"retry_delay": 0.05})
    try:
        manager.add("a", first.master_url, "root", "password", **FAST_CONNECTION)
        manager.add("b", second.master_url, "root", "password", **FAST_CONNECTION)
        await _until(lambda: all(status.synced for status in manager.statuses()))
        pool_a, pool_b = manager.status("a").pool_id, manager.status("b").pool_id
        assert pool_a is not None and pool_b is not None
        assert pool_a != pool_b and sorted(store.pools()) == sorted([pool_a, pool_b])
        assert {i: store.get(i) for i in store.by_pool(pool_a)} == expected_objects(first)
        assert {i: store.get(i) for i in store.by_pool(pool_b)} == expected_objects(second)

        # The first pool loses every host: only its status changes; the second keeps following.
        for host in first.pool.host_refs:
            await first.stop_host(host)
        await _until(lambda: manager.status("a").status == "disconnected")
        assert manager.status("a").last_error
        assert manager.status("b").status == "connected"

        vm = _user_vm(second)
        session = await second.pool.call(
            "session.login_with_password", ["root", "password"], host=second.pool.master
        )
        await second.pool.call(
            "VM.set_name_label", [session, vm, "still-live"], host=second.pool.master
        )
        vm_id = second.pool.records("VM")[vm]["uuid"]
        await _until(lambda: (store.get(vm_id) or {}).get("name_label") == "still-live")
        # Within the grace period the lost pool's objects stay cached.
        assert len(store.by_pool(pool_a)) == len(expected_objects(first))
    finally:
        await manager.close()
    assert store.pools() == []


async def test_tasks_that_vanish_without_events_are_refetched(two_sims):
    sim, _ = two_sims
    store = ObjectStore()
    async with running_sync(sim, store) as sync:
        session = await sim.pool.call(
            "session.login_with_password", ["root", "password"], host=sim.pool.master
        )
        task = await sim.pool.call("task.create", [session, "backup", ""], host=sim.pool.master)
        task_id = sim.pool.records("task")[task]["uuid"]
        await _until(lambda: store.get(task_id) is not None)

        # A toolstack restart drops tasks without any event: only the row counts tell.
        record = sim.pool.records("task").pop(task)
        sim.pool.db.uuids["task"].pop(record["uuid"])
        vm = _user_vm(sim)
        await sim.pool.call("VM.set_name_label", [session, vm, "poke"], host=sim.pool.master)

        await _until(lambda: store.get(task_id) is None)
        assert sync.class_reloads.get("task") == 1
        assert dict(store.objects) == expected_objects(sim)
