"""Tasks: `_async` (the task id at once, progress moving live in the cache, task.wait for the
outcome), task.cancel on a running action, task.destroy."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.api.harness import RpcError, connect
from tests.api.test_commands_support import Env, commands_env

CLONE_SECONDS = 1.0


async def _pending_task(env: Env, name_label: str) -> dict:
    async with asyncio.timeout(5):
        while True:
            tasks = await env.objects({"type": "task", "name_label": name_label})
            pending = [t for t in tasks.values() if t["status"] == "pending"]
            if pending:
                return pending[0]
            await asyncio.sleep(0.02)


async def test_async_returns_the_task_whose_progress_moves(tmp_path: Path) -> None:
    async with commands_env(tmp_path, op_durations={"VM.clone": CLONE_SECONDS}) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        started = time.monotonic()
        task_id = await env.client.call(
            "vm.clone", {"id": vm_id, "name": "async clone", "full_copy": False, "_async": True}
        )
        assert time.monotonic() - started < CLONE_SECONDS / 2
        # The task is already a cache object when the id comes back.
        task = env.app.objects.get(task_id)
        assert task["type"] == "task" and task["name_label"] == "Async.VM.clone"
        assert task["status"] == "pending"

        # A dashboard polling the cache sees the progress move between 0 and 1.
        seen = set()
        while env.app.objects.get(task_id)["status"] == "pending":
            seen.add(env.app.objects.get(task_id)["progress"])
            await asyncio.sleep(0.02)
        assert any(0 < p < 1 for p in seen), seen

        new_vm_id = await env.client.call("task.wait", {"id": task_id})
        assert env.app.objects.get(new_vm_id)["name_label"] == "async clone"
        # Waiting again gives the same outcome (kept for later waiters).
        assert await env.client.call("task.wait", {"id": task_id}) == new_vm_id

        # An action made of plain calls gets a task of its own.
        task_id = await env.client.call(
            "vm.set", {"id": vm_id, "name_label": "renamed", "_async": True}
        )
        assert await env.client.call("task.wait", {"id": task_id}) is True
        assert env.app.objects.get(vm_id)["name_label"] == "renamed"

        # A failure before any task exists answers at once, as a plain call would.
        with pytest.raises(RpcError) as raised:
            await env.client.call("vm.start", {"id": "no-such-vm", "_async": True})
        assert raised.value.code == 1

        # A failing task: task.wait gives its XO error.
        running_id = (await env.vm_in_state("Running"))["id"]
        task_id = await env.client.call("vm.start", {"id": running_id, "_async": True})
        with pytest.raises(RpcError) as raised:
            await env.client.call("task.wait", {"id": task_id})
        assert raised.value.code == 13 and raised.value.data["objectId"] == running_id

        # `_async` is reserved to actions, and must be `true`.
        for method, params in (
            ("xo.getAllObjects", {"_async": True}),
            ("vm.start", {"id": vm_id, "_async": "yes"}),
        ):
            with pytest.raises(RpcError) as raised:
                await env.client.call(method, params)
            assert raised.value.code == 10, method
        with pytest.raises(RpcError) as raised:
            await env.client.call("task.wait", {"id": "no-such-task"})
        assert raised.value.code == 1


async def test_cancel_a_running_action(tmp_path: Path) -> None:
    async with commands_env(tmp_path, op_durations={"VM.clone": 3.0}) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        vms_before = env.sim_count("VM")

        # A synchronous caller (on its own connection) gets a clear "cancelled" error.
        async with connect(env.app) as caller:
            await caller.sign_in()
            clone = asyncio.create_task(
                caller.call("vm.clone", {"id": vm_id, "name": "never", "full_copy": False})
            )
            task = await _pending_task(env, "Async.VM.clone")
            assert await env.client.call("task.cancel", {"id": task["id"]}) is True
            with pytest.raises(RpcError) as raised:
                await asyncio.wait_for(clone, 5)
        assert raised.value.code == 21
        assert raised.value.data["code"] == "TASK_CANCELLED"
        assert raised.value.data["task"] == task["id"]
        assert raised.value.data["objectId"] == vm_id
        assert "cancelled" in raised.value.error["message"]
        assert env.sim_count("VM") == vms_before
        assert env.sim_count("VM", name_label="never") == 0

        # So does a task.wait on a cancelled `_async` action.
        task_id = await env.client.call(
            "vm.clone", {"id": vm_id, "name": "never", "full_copy": False, "_async": True}
        )
        await env.client.call("task.cancel", {"id": task_id})
        with pytest.raises(RpcError) as raised:
            await env.client.call("task.wait", {"id": task_id})
        assert raised.value.data["code"] == "TASK_CANCELLED"
        assert env.sim_count("VM") == vms_before

        # task.cancel / task.destroy on something that is not a task.
        with pytest.raises(RpcError) as raised:
            await env.client.call("task.cancel", {"id": vm_id})
        assert (raised.value.code, raised.value.data["type"]) == (1, "task")
        with pytest.raises(RpcError) as raised:
            await env.client.call("task.destroy", {})
        assert raised.value.code == 10


async def test_task_destroy_and_wait_on_foreign_tasks(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        # A task someone else created on the pool (XenCenter, a script…).
        connection = env.app.pools.sync_of(env.server_id).connection
        ref = await connection.call("task.create", "backup", "nightly")
        await env.app.pools.sync_of(env.server_id).barrier()
        task_id = next(
            i for i, t in env.app.objects.by_type("task").items() if t["_xapiRef"] == ref
        )
        waiter = asyncio.create_task(env.client.call("task.wait", {"id": task_id}))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        await connection.call("task.set_result", ref, "<value>42</value>")
        await connection.call("task.set_status", ref, "success")
        assert await asyncio.wait_for(waiter, 5) == "42"
        # Someone else's task: left for its owner to read.
        assert (await connection.call("task.get_record", ref))["status"] == "success"

        ref = await connection.call("task.create", "other", "")
        await env.app.pools.sync_of(env.server_id).barrier()
        task_id = next(
            i for i, t in env.app.objects.by_type("task").items() if t["_xapiRef"] == ref
        )
        assert await env.client.call("task.destroy", {"id": task_id}) is True
        assert await env.object(task_id) is None
        with pytest.raises(RpcError) as raised:
            await env.client.call("task.destroy", {"id": task_id})
        assert raised.value.code == 1
