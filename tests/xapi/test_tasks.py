"""call_async against the simulator: results, progress, failures, cancellation, and that every
task is destroyed afterwards."""

from __future__ import annotations

import asyncio

import pytest

from tests.xapi.conftest import user_vms
from tests.xapi.proxy import FrontProxy
from xod.xapi.errors import TaskCancelled, XapiError


def async_tasks(sim) -> list[dict]:
    return [
        record
        for record in sim.pool.records("task").values()
        if record["name_label"].startswith("Async.")
    ]


async def test_call_async_returns_the_result_and_reports_progress(make_sim, connect_to):
    sim = await make_sim(op_duration=0.6)
    connection = connect_to(sim.master_url)
    await connection.connect()
    vm = user_vms(sim, "Halted")[0]
    progress: list[float] = []
    clone = await connection.call_async("VM.clone", vm, "copy", progress=progress.append)
    assert clone.startswith("OpaqueRef:")
    assert sim.pool.records("VM")[clone]["name_label"] == "copy"
    assert any(0 < value < 1 for value in progress), progress
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    assert len(progress) == len(set(progress))  # called only when the progress changes
    assert async_tasks(sim) == []
    assert not connection._tasks.watching  # the shared watcher stops when nobody waits


async def test_call_async_void_result(make_sim, connect_to):
    sim = await make_sim(op_duration=0.1)
    connection = connect_to(sim.master_url)
    await connection.connect()
    vm = user_vms(sim, "Halted")[0]
    assert await connection.call_async("VM.start", vm, False, False) in ("", None)
    assert sim.pool.records("VM")[vm]["power_state"] == "Running"
    assert async_tasks(sim) == []


async def test_concurrent_async_calls_share_one_watcher(make_sim, connect_to):
    sim = await make_sim(op_duration=0.3, vms=24)
    connection = connect_to(sim.master_url)
    await connection.connect()
    vms = user_vms(sim, "Halted")[:3]
    assert len(vms) == 3
    clones = await asyncio.gather(
        *(connection.call_async("VM.clone", vm, f"copy-{i}") for i, vm in enumerate(vms))
    )
    names = {sim.pool.records("VM")[clone]["name_label"] for clone in clones}
    assert names == {"copy-0", "copy-1", "copy-2"}
    assert async_tasks(sim) == []


async def test_failed_task_raises_its_error_info(make_sim, connect_to):
    sim = await make_sim(op_duration=0.1)
    connection = connect_to(sim.master_url)
    await connection.connect()
    vm = user_vms(sim, "Running")[0]
    with pytest.raises(XapiError) as failure:
        await connection.call_async("VM.start", vm, False, False)
    assert not isinstance(failure.value, TaskCancelled)
    assert failure.value.code == "VM_BAD_POWER_STATE"
    assert failure.value.params == [vm, "halted", "running"]
    assert async_tasks(sim) == []


async def test_cancelled_task_raises_task_cancelled(make_sim, connect_to):
    sim = await make_sim(op_duration=3.0)
    connection = connect_to(sim.master_url)
    await connection.connect()
    vm = user_vms(sim, "Halted")[0]
    waiting = asyncio.create_task(connection.call_async("VM.clone", vm, "doomed"))
    for _ in range(100):
        pending = [
            ref
            for ref, record in (await connection.call("task.get_all_records")).items()
            if record["name_label"] == "Async.VM.clone" and record["status"] == "pending"
        ]
        if pending:
            break
        await asyncio.sleep(0.02)
    await connection.call("task.cancel", pending[0])
    with pytest.raises(TaskCancelled) as cancelled:
        await asyncio.wait_for(waiting, 5)
    assert cancelled.value.code == "TASK_CANCELLED"
    await asyncio.sleep(0.1)
    assert async_tasks(sim) == []


async def test_call_async_timeout_still_destroys_the_task(make_sim, connect_to):
    sim = await make_sim(op_duration=0.8)
    connection = connect_to(sim.master_url)
    await connection.connect()
    vm = user_vms(sim, "Halted")[0]
    with pytest.raises(TimeoutError):
        await connection.call_async("VM.clone", vm, "slow", timeout=0.2)
    # A pending task is marked for destruction and deleted when it completes.
    for _ in range(100):
        if not async_tasks(sim):
            break
        await asyncio.sleep(0.05)
    assert async_tasks(sim) == []


async def test_call_async_over_xmlrpc(make_sim, connect_to):
    sim = await make_sim(op_duration=0.2)
    connection = connect_to(sim.master_url, protocol="xmlrpc")
    await connection.connect()
    vm = user_vms(sim, "Halted")[0]
    clone = await connection.call_async("VM.clone", vm, "xml-copy")
    assert sim.pool.records("VM")[clone]["name_label"] == "xml-copy"
    assert async_tasks(sim) == []


async def test_one_event_stream_serves_every_waiting_call(make_sim, connect_to):
    sim = await make_sim(op_duration=0.4, vms=24)
    async with FrontProxy(sim.master_url) as front:
        connection = connect_to(front.url)
        await connection.connect()
        vms = user_vms(sim, "Halted")[:3]
        assert len(vms) == 3
        await asyncio.gather(
            *(connection.call_async("VM.clone", vm, f"c{i}") for i, vm in enumerate(vms))
        )
        assert front.max_in_flight["event.from"] == 1
        # Each waiter reads its task once (the gap before it listened), nothing more.
        assert front.methods.count("task.get_record") == 3
    assert async_tasks(sim) == []


async def test_polls_tasks_when_event_from_is_unknown(make_sim, connect_to):
    sim = await make_sim(op_duration=0.3)
    async with FrontProxy(sim.master_url, unknown_methods=frozenset({"event.from"})) as front:
        connection = connect_to(front.url)
        await connection.connect()
        vm = user_vms(sim, "Halted")[0]
        clone = await connection.call_async("VM.clone", vm, "polled")
        assert sim.pool.records("VM")[clone]["name_label"] == "polled"
        assert front.methods.count("task.get_record") >= 2
    assert async_tasks(sim) == []
