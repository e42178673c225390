"""Async tasks, event.from and legacy events of the simulator core."""

from __future__ import annotations

import asyncio
import time
import xmlrpc.client

from tests.sim.core_helpers import check_reverse_references, failure, login, small_pool, vms
from xod.sim.values import Int32


async def wait_finished(pool, task: str) -> dict:
    for _ in range(500):
        record = pool.records("task")[task]
        if record["status"] != "pending":
            return record
        await asyncio.sleep(0.01)
    raise AssertionError("task never finished")


async def test_async_clone_progress_and_result() -> None:
    pool = small_pool(op_durations={"VM.clone": 0.25})
    s = await login(pool)
    m = pool.master
    vm = vms(pool, "Halted")[0]
    token = (await pool.call("event.from", [s, ["task"], "", 0.1], host=m))["token"]
    task = await pool.call("Async.VM.clone", [s, vm, "async copy"], host=m)
    record = pool.records("task")[task]
    assert record["name_label"] == "Async.VM.clone" and record["status"] == "pending"
    assert record["resident_on"] == m and record["progress"] == 0.0
    progress: list[float] = []
    while True:
        batch = await pool.call("event.from", [s, ["task"], token, 5.0], host=m)
        token = batch["token"]
        snapshots = [e["snapshot"] for e in batch["events"] if e["ref"] == task]
        progress += [snap["progress"] for snap in snapshots]
        if snapshots and snapshots[-1]["status"] != "pending":
            final = snapshots[-1]
            break
    assert len(set(progress)) >= 3 and progress == sorted(progress) and progress[-1] == 1.0
    assert final["status"] == "success" and final["finished"] != "19700101T00:00:00Z"
    new_vm = xmlrpc.client.loads(
        f"<methodResponse><params><param>{final['result']}</param></params></methodResponse>"
    )[0][0]
    assert final["result"] == f"<value>{new_vm!s}</value>"
    assert pool.records("VM")[new_vm]["name_label"] == "async copy"
    await pool.call("task.destroy", [s, task], host=m)
    assert task not in pool.records("task")
    check_reverse_references(pool)


async def test_async_void_failure_and_sync_errors() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master
    vm = vms(pool, "Halted")[0]
    ok = await pool.call("Async.VM.start", [s, vm, False, False], host=m)
    assert (await wait_finished(pool, ok))["result"] == "<value></value>"
    bad = await pool.call("Async.VM.start", [s, vm, False, False], host=m)
    record = await wait_finished(pool, bad)
    assert record["status"] == "failure" and record["progress"] == 1.0
    assert record["error_info"] == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    # argument errors stay synchronous
    assert await failure(pool, "Async.VM.start", [s, vm]) == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "Async.VM.start",
        "3",
        "1",
    ]
    assert await failure(pool, "Async.VM.start", ["OpaqueRef:x", vm, False, False]) == [
        "SESSION_INVALID",
        "OpaqueRef:x",
    ]
    created = await pool.call(
        "Async.network.create",
        [
            s,
            {
                "name_label": "n",
                "name_description": "",
                "MTU": 1500,
                "other_config": {},
                "bridge": "xenbr9",
                "managed": True,
                "tags": [],
            },
        ],
        host=m,
    )
    network = (await wait_finished(pool, created))["result"][7:-8]
    assert pool.records("network")[network]["bridge"] == "xenbr9"


async def test_cancel_and_destroy_pending() -> None:
    pool = small_pool(op_duration=0.3)
    s = await login(pool)
    m = pool.master
    vm = vms(pool, "Halted")[0]
    task = await pool.call("Async.VM.start", [s, vm, False, False], host=m)
    await asyncio.sleep(0.05)
    await pool.call("task.cancel", [s, task], host=m)
    record = await wait_finished(pool, task)
    assert record["status"] == "cancelled" and record["error_info"] == ["TASK_CANCELLED", task]
    assert pool.records("VM")[vm]["power_state"] == "Halted"
    assert pool.records("VM")[vm]["current_operations"] == {}
    # destroying a pending task deletes it once its operation completes
    task = await pool.call("Async.VM.start", [s, vm, False, False], host=m)
    await pool.call("task.destroy", [s, task], host=m)
    assert task in pool.records("task")
    for _ in range(100):
        if task not in pool.records("task"):
            break
        await asyncio.sleep(0.01)
    assert task not in pool.records("task")
    assert pool.records("VM")[vm]["power_state"] == "Running"
    await pool.close()


async def test_finished_tasks_collected_beyond_limit() -> None:
    pool = small_pool(finished_task_limit=3)
    s = await login(pool)
    m = pool.master
    tasks = []
    for index in range(6):
        tasks.append(await pool.call("task.create", [s, f"t{index}", ""], host=m))
    done = []
    for label in range(6):
        vm = vms(pool, "Halted")[0]
        done.append(await pool.call("Async.VM.clone", [s, vm, f"c{label}"], host=m))
        if done[-1] in pool.records("task"):
            await wait_finished(pool, done[-1])
    await asyncio.sleep(0.05)
    remaining = [t for t in done if t in pool.records("task")]
    assert remaining == done[-3:]
    assert all(t in pool.records("task") for t in tasks)  # pending client tasks stay
    await pool.call("task.set_progress", [s, tasks[0], 0.5], host=m)
    assert pool.records("task")[tasks[0]]["progress"] == 0.5


async def test_event_from_semantics() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master
    full = await pool.call("event.from", [s, ["*"], "", 1.0], host=m)
    assert {e["operation"] for e in full["events"]} == {"add"}
    assert len(full["events"]) == sum(pool.db.counts().values()) - pool.db.counts()["session"]
    counts = full["valid_ref_counts"]
    assert counts["vm"] == len(pool.records("VM")) and counts["task"] == 0
    assert all(isinstance(v, Int32) for v in counts.values())
    token = full["token"]
    assert len(token) == 41 and token.count(",") == 1
    vm = vms(pool, "Halted")[0]
    # several changes of one object -> one mod with the latest snapshot
    for label in ("a", "b", "c"):
        await pool.call("VM.set_name_label", [s, vm, label], host=m)
    batch = await pool.call("event.from", [s, ["VM"], token, 1.0], host=m)
    assert [(e["class"], e["operation"], e["ref"]) for e in batch["events"]] == [("vm", "mod", vm)]
    event = batch["events"][0]
    assert event["snapshot"]["name_label"] == "c" and event["timestamp"] == "0.0"
    assert int(event["id"]) > 0 and batch["token"] > token
    token = batch["token"]
    # created after the token and modified -> one add; created and deleted -> nothing
    clone = await pool.call("VM.clone", [s, vm, "n"], host=m)
    await pool.call("VM.set_name_label", [s, clone, "renamed"], host=m)
    gone = await pool.call("VM.clone", [s, vm, "gone"], host=m)
    await pool.call("VM.destroy", [s, gone], host=m)
    batch = await pool.call("event.from", [s, ["vm", "vbd", "nosuchclass"], token, 1.0], host=m)
    by_ref = {e["ref"]: e for e in batch["events"]}
    assert by_ref[clone]["operation"] == "add" and by_ref[clone]["snapshot"]["name_label"] == (
        "renamed"
    )
    assert gone not in by_ref
    assert len(batch["events"]) == len(by_ref)  # at most one event per object
    assert {e["class"] for e in batch["events"]} <= {"vm", "vbd"}
    token = batch["token"]
    # deletion of an object that existed at the token -> del without snapshot
    await pool.call("VM.destroy", [s, clone], host=m)
    batch = await pool.call("event.from", [s, ["vm"], token, 1.0], host=m)
    assert [(e["operation"], "snapshot" in e) for e in batch["events"]] == [("del", False)]
    # reverse references emit mods of the other side
    token = batch["token"]
    running = vms(pool, "Running")[0]
    host = pool.records("VM")[running]["resident_on"]
    target = next(h for h in pool.host_refs if h != host)
    await pool.call("VM.pool_migrate", [s, running, target, {}], host=m)
    batch = await pool.call("event.from", [s, ["host"], token, 1.0], host=m)
    assert {e["ref"] for e in batch["events"]} == {host, target}
    # one object only
    batch = await pool.call("event.from", [s, [f"vm/{running}"], "", 1.0], host=m)
    assert [e["ref"] for e in batch["events"]] == [running]


async def test_event_from_timeout_tokens_inject() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master
    token = (await pool.call("event.from", [s, ["vm"], "", 1.0], host=m))["token"]
    started = time.perf_counter()
    batch = await pool.call("event.from", [s, ["vm"], token, 0.2], host=m)
    assert batch["events"] == [] and time.perf_counter() - started >= 0.2
    assert batch["token"] >= token
    assert await failure(pool, "event.from", [s, ["vm"], "garbage", 1.0]) == [
        "EVENT_FROM_TOKEN_PARSE_FAILURE",
        "garbage",
    ]
    # blocks until a change arrives
    waiting = asyncio.ensure_future(pool.call("event.from", [s, ["pool"], token, 5.0], host=m))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await pool.call("pool.add_to_other_config", [s, pool.pool_ref, "xo:barrier", "1"], host=m)
    batch = await asyncio.wait_for(waiting, 2)
    assert batch["events"][0]["snapshot"]["other_config"] == {"xo:barrier": "1"}
    injected = await pool.call("event.inject", [s, "pool", pool.pool_ref], host=m)
    batch = await pool.call("event.from", [s, ["pool"], injected, 1.0], host=m)
    assert [(e["operation"], e["ref"]) for e in batch["events"]] == [("mod", pool.pool_ref)]
    assert await failure(pool, "event.inject", [s, "pool", "OpaqueRef:x"]) == [
        "HANDLE_INVALID",
        "pool",
        "OpaqueRef:x",
    ]
    # EVENTS_LOST on demand, then normal again
    pool.inject_events_lost()
    assert await failure(pool, "event.from", [s, ["vm"], token, 1.0]) == ["EVENTS_LOST"]
    assert (await pool.call("event.from", [s, ["vm"], token, 0.05], host=m))["events"] == []


async def test_events_lost_for_tokens_older_than_trimmed_tombstones() -> None:
    pool = small_pool()
    pool.db._tombstone_limit = 4
    s = await login(pool)
    m = pool.master
    token = (await pool.call("event.from", [s, ["task"], "", 0.1], host=m))["token"]
    for index in range(6):
        task = await pool.call("task.create", [s, f"t{index}", ""], host=m)
        await pool.call("task.set_status", [s, task, "success"], host=m)
        await pool.call("task.destroy", [s, task], host=m)
    assert await failure(pool, "event.from", [s, ["task"], token, 1.0]) == ["EVENTS_LOST"]


async def test_legacy_events() -> None:
    pool = small_pool(legacy_event_queue_limit=5)
    s = await login(pool)
    m = pool.master
    assert await failure(pool, "event.next", [s]) == ["SESSION_NOT_REGISTERED", s]
    await pool.call("event.register", [s, ["vm"]], host=m)
    assert int(await pool.call("event.get_current_id", [s], host=m)) > 0
    vm = vms(pool, "Halted")[0]
    await pool.call("VM.set_name_label", [s, vm, "x"], host=m)
    await pool.call("network.set_name_label", [s, next(iter(pool.records("network"))), "n"], host=m)
    events = await pool.call("event.next", [s], host=m)
    assert [(e["class"], e["operation"], e["ref"]) for e in events] == [("vm", "mod", vm)]
    assert events[0]["snapshot"]["name_label"] == "x"
    for index in range(6):
        await pool.call("VM.set_name_label", [s, vm, f"x{index}"], host=m)
    assert await failure(pool, "event.next", [s]) == ["EVENTS_LOST"]
    await pool.call("event.unregister", [s, ["vm"]], host=m)
    await pool.call("event.register", [s, ["vm"]], host=m)
    waiting = asyncio.ensure_future(pool.call("event.next", [s], host=m))
    await asyncio.sleep(0.05)
    await pool.call("session.logout", [s], host=m)
    try:
        await asyncio.wait_for(waiting, 2)
    except Exception as error:
        assert getattr(error, "description", None) == ["SESSION_INVALID", s]
    else:
        raise AssertionError("event.next returned after logout")


async def test_churn_produces_events() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master
    token = (await pool.call("event.from", [s, ["*"], "", 1.0], host=m))["token"]
    await pool.start_churn(200)
    await asyncio.sleep(0.3)
    await pool.stop_churn()
    batch = await pool.call("event.from", [s, ["*"], token, 1.0], host=m)
    assert batch["events"] and pool.db.generation - int(token.split(",")[0]) >= 20
    check_reverse_references(pool)
    await pool.close()
