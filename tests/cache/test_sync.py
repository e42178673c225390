"""The cache against the simulator over real sockets: sync, churn, faults, resync differences."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.cache.churn_driver import ChurnDriver
from xod.cache.objects import SYNCED_CLASSES, transform_pool
from xod.cache.pools import PoolManager
from xod.cache.store import ChangeBatch, ObjectStore, replay
from xod.cache.sync import PoolSync
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator
from xod.xapi.connection import PoolConnection

FAST_CONNECTION: dict[str, Any] = {
    "call_timeout": 5.0,
    "probe_timeout": 1.0,
    "backoff_initial": 0.05,
    "backoff_max": 0.3,
}


def expected_objects(sim: Simulator) -> dict:
    """What the cache must hold: the pure transform of the simulator's current records."""
    return transform_pool({cls: sim.pool.records(cls) for cls in SYNCED_CLASSES})


@contextlib.asynccontextmanager
async def running_sync(
    sim: Simulator, store: ObjectStore, event_timeout: float = 1.0
) -> AsyncIterator[PoolSync]:
    connection = PoolConnection(sim.master_url, "root", "password", **FAST_CONNECTION)
    sync = PoolSync(connection, store, event_timeout=event_timeout, retry_delay=0.05)
    sync.start()
    try:
        async with asyncio.timeout(10):
            await sync.wait_synced()
        yield sync
    finally:
        await sync.stop()
        await connection.close()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(hosts=3, vms=30, templates=10, seed=1)) as simulator:
        yield simulator


def _recorder(store: ObjectStore) -> list[ChangeBatch]:
    batches: list[ChangeBatch] = []
    store.subscribe(batches.append)
    return batches


async def _barrier(sync: PoolSync, seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        await sync.barrier()


async def test_initial_sync_equals_the_simulators_state(sim):
    store = ObjectStore()
    batches = _recorder(store)
    async with running_sync(sim, store) as sync:
        expected = expected_objects(sim)
        assert dict(store.objects) == expected
        assert len(store.by_type("VM")) == 30
        assert len(store.by_type("host")) == 3
        assert store.pools() == [sync.pool_id]
        assert len(batches) == 1 and len(batches[0].enter) == len(expected)
        # Host addresses were handed to the connection for failover.
        assert set(sync.connection.known_hosts) >= {"127.0.0.1", "127.0.0.2", "127.0.0.3"}


async def test_the_runtime_hook_wraps_only_the_synchronous_load(sim):
    """The daemon's `bulk_load` (GC off) must wrap the load and nothing else: other coroutines
    (clients, other pools) run while the records are fetched and need the cyclic GC."""
    assert gc.isenabled()
    seen: list[tuple[str, bool]] = []
    hook_calls: list[tuple[str, int]] = []
    synced = asyncio.Event()

    async def sample() -> None:
        while not synced.is_set():
            seen.append((sync.state, gc.isenabled()))
            await asyncio.sleep(0)

    @contextlib.contextmanager
    def gc_off_load() -> Iterator[None]:
        # runtime.bulk_load's GC switch, without its process-wide freeze.
        hook_calls.append(("enter", len(store)))
        gc.disable()
        try:
            yield
        finally:
            gc.enable()
        hook_calls.append(("exit", len(store)))

    store = ObjectStore()
    connection = PoolConnection(sim.master_url, "root", "password", **FAST_CONNECTION)
    sync = PoolSync(connection, store, event_timeout=1.0, bulk_load=gc_off_load)
    sampler = asyncio.create_task(sample())
    sync.start()
    try:
        async with asyncio.timeout(10):
            await sync.wait_synced()
    finally:
        synced.set()
        await sampler
        await sync.stop()
        await connection.close()
    assert len(store.by_type("VM")) == 30
    # Entered once with an empty store, left with the whole pool in it.
    assert hook_calls == [("enter", 0), ("exit", len(store))]
    during_sync = [enabled for state, enabled in seen if state == "syncing"]
    assert during_sync and all(during_sync)
    assert gc.isenabled()


async def test_the_cache_and_the_simulator_leave_the_process_gc_alone():
    """Tests, the simulator and the demo build pools and sync them: neither may freeze the heap
    or leave the GC off (the daemon alone does that, through xod/runtime.py)."""
    gc.unfreeze()  # whatever an earlier test of the runtime itself left
    async with Simulator(SimConfig(hosts=2, vms=20, templates=5, seed=3)) as simulator:
        assert gc.get_freeze_count() == 0 and gc.isenabled()
        store = ObjectStore()
        async with running_sync(simulator, store):
            assert len(store.by_type("VM")) == 20
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


async def test_random_churn_converges_and_batches_replay(sim):
    store = ObjectStore()
    batches = _recorder(store)
    driver = ChurnDriver(sim.pool, seed=7)
    async with running_sync(sim, store) as sync:
        kinds = set()
        for i in range(300):
            kinds.add(driver.step())
            if i % 7 == 0:
                await asyncio.sleep(0.01)  # let some replies through mid-churn
        await _barrier(sync)
        assert dict(store.objects) == expected_objects(sim)
        assert replay(batches) == dict(store.objects)
        assert len(batches) > 2 and sync.full_syncs == 1
        assert {"rename", "power", "vif_add", "task_add"} <= kinds
        # The cache's counts kept matching XAPI's valid_ref_counts: no class had to be refetched.
        assert set(sync.class_reloads) <= {"task"}


async def test_master_crash_fails_over_to_the_new_master(sim):
    store = ObjectStore()
    batches = _recorder(store)
    driver = ChurnDriver(sim.pool, seed=3)
    async with running_sync(sim, store) as sync:
        old_master = sim.pool.master
        before = dict(store.objects)
        seen = len(batches)
        await sim.stop_host(old_master)
        for _ in range(20):
            driver.step()
        new_master = next(h for h in sim.pool.host_refs if h != old_master)
        sim.promote(new_master)
        await _barrier(sync, seconds=20)
        expected = expected_objects(sim)
        assert dict(store.objects) == expected
        assert sync.connection.master_url == sim.url_of(new_master)
        assert replay(batches) == expected
        # Nothing duplicated: only objects that really changed were emitted after the crash.
        changed = {i for i, o in expected.items() if before.get(i) != o}
        changed |= before.keys() - expected.keys()
        emitted = set()
        for batch in batches[seen:]:
            emitted |= set(batch.enter) | set(batch.exit)
        assert emitted == changed


async def test_session_invalid_relogs_and_continues(sim):
    store = ObjectStore()
    driver = ChurnDriver(sim.pool, seed=5)
    async with running_sync(sim, store) as sync:
        session = sync.connection.session_ref
        sim.invalidate_sessions()
        for _ in range(10):
            driver.step()
        await _barrier(sync)
        assert sync.connection.session_ref != session
        assert dict(store.objects) == expected_objects(sim)
        assert sync.state == "following"


async def test_events_lost_resync_emits_exactly_the_differences(sim):
    store = ObjectStore()
    batches = _recorder(store)
    async with running_sync(sim, store) as sync:
        await _barrier(sync)
        seen = len(batches)
        syncs = sync.full_syncs
        db = sim.pool.db
        vms = sorted(r for r, v in db.tables["VM"].items() if v["name_label"].startswith("vm-"))[:3]
        vif = db.tables["VM"][vms[2]]["VIFs"][0]
        # No await in between: the blocked event.from wakes with EVENTS_LOST, not these events.
        sim.pool.inject_events_lost()
        db.update("VM", vms[0], {"name_label": "changed-0"})
        db.update("VM", vms[1], {"name_label": "changed-1"})
        network = db.tables["VIF"][vif]["network"]
        db.delete("VIF", vif)
        await _barrier(sync)
        assert sync.full_syncs == syncs + 1
        uuid_of = {ref: db.tables["VM"][ref]["uuid"] for ref in vms}
        network_id = db.tables["network"][network]["uuid"]
        entered = set().union(*(b.enter for b in batches[seen:]))
        exited = [i for b in batches[seen:] for i in b.exit]
        # vms[2] lost its VIF, its network too; the VIF exits; nothing else moves.
        assert entered == {uuid_of[vms[0]], uuid_of[vms[1]], uuid_of[vms[2]], network_id}
        assert len(exited) == 1 and store.get(exited[0]) is None
        assert dict(store.objects) == expected_objects(sim)


async def test_host_that_never_answers_times_out_and_reconnects(sim):
    store = ObjectStore()
    async with running_sync(sim, store, event_timeout=0.3) as sync:
        master = sim.pool.master
        syncs = sync.full_syncs
        sim.hang(master)
        await asyncio.sleep(3.5)  # event.from HTTP timeout = 1.1 × 0.3 + 2 s margin
        assert sync.connection.status != "connected" or sync.state != "following"
        sim.pool.db.update("VM", next(iter(sim.pool.records("VM"))), {"name_label": "while-hung"})
        sim.hang(master, False)
        await _barrier(sync, seconds=20)
        assert sync.full_syncs > syncs
        assert dict(store.objects) == expected_objects(sim)


async def test_pool_disconnected_past_the_limit_leaves_and_comes_back(sim):
    store = ObjectStore()
    options = {"retry_delay": 0.05}
    manager = PoolManager(store, disconnect_grace=0.5, event_timeout=0.5, sync_options=options)
    sync = manager.add("server-1", sim.master_url, "root", "password", **FAST_CONNECTION)
    try:
        async with asyncio.timeout(10):
            await sync.wait_synced()
        assert manager.status("server-1").synced
        batches = _recorder(store)
        count = len(store)
        for host in sim.pool.host_refs:
            await sim.stop_host(host)
        async with asyncio.timeout(15):
            while len(store):
                await asyncio.sleep(0.05)
        status = manager.status("server-1")
        assert status.status != "connected" and not status.synced and status.last_error
        assert len(batches[-1].exit) == count
        for host in sim.pool.host_refs:
            await sim.start_host(host)
        async with asyncio.timeout(20):
            while not manager.status("server-1").synced:
                await asyncio.sleep(0.05)
        await _barrier(sync)
        assert dict(store.objects) == expected_objects(sim)
        assert manager.status("server-1").status == "connected"
    finally:
        await manager.close()
    assert len(store) == 0
