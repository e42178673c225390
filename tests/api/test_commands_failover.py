"""Commands while the pool's master fails over: run exactly once, or fail saying the outcome is
unknown — never sent twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from yarl import URL

from tests.api.harness import RpcError, connect
from tests.api.test_commands_support import Env, commands_env
from xod.api.jobs import commands_of
from xod.xapi.errors import TransportError
from xod.xapi.transport import Transport


def _hosts(env: Env) -> tuple[str, str]:
    master = env.sim.pool.master
    return master, next(h for h in env.sim.pool.host_refs if h != master)


async def _promote_later(env: Env, host_ref: str, delay: float) -> None:
    await asyncio.sleep(delay)
    env.sim.promote(host_ref)


async def test_command_issued_while_the_master_is_down_runs_once_on_the_new_one(
    tmp_path: Path,
) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        old_master, new_master = _hosts(env)
        await env.sim.stop_host(old_master)
        promotion = asyncio.create_task(_promote_later(env, new_master, 0.5))

        clone_id = await env.client.call(
            "vm.clone", {"id": vm_id, "name": "during failover", "full_copy": False}
        )
        await promotion
        assert env.sim_count("VM", name_label="during failover") == 1
        assert env.app.objects.get(clone_id)["name_label"] == "during failover"
        assert env.app.pools.status(env.server_id).status == "connected"


async def test_command_running_when_the_master_crashes_completes_once(tmp_path: Path) -> None:
    async with commands_env(tmp_path, op_durations={"VM.clone": 1.0}) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        old_master, new_master = _hosts(env)
        async with connect(env.app) as caller:
            await caller.sign_in()
            clone = asyncio.create_task(
                caller.call("vm.clone", {"id": vm_id, "name": "crash", "full_copy": False})
            )
            # The task is running on the pool when its master dies; another host takes over.
            async with asyncio.timeout(5):
                while not any(
                    t["name_label"] == "Async.VM.clone"
                    for t in env.app.objects.by_type("task").values()
                ):
                    await asyncio.sleep(0.02)
            await env.sim.stop_host(old_master)
            await _promote_later(env, new_master, 0.2)
            clone_id = await asyncio.wait_for(clone, 20)
        assert env.sim_count("VM", name_label="crash") == 1
        assert env.app.objects.get(clone_id)["name_label"] == "crash"


async def test_command_with_unknown_outcome_is_not_sent_twice(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        # The master runs the call, then the connection dies before the answer.
        env.sim.drop_connections(1, "Async.VM.clone", after_call=True)
        with pytest.raises(RpcError) as raised:
            await env.client.call("vm.clone", {"id": vm_id, "name": "maybe", "full_copy": False})
        error = raised.value
        assert error.code == 21 and error.data["code"] == "OUTCOME_UNKNOWN"
        assert error.data["objectId"] == vm_id and error.data["method"] == "Async.VM.clone"
        assert "outcome unknown" in error.error["message"]
        # It did run, once: xod did not send it again.
        async with asyncio.timeout(5):
            while env.sim_count("VM", name_label="maybe") == 0:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert env.sim_count("VM", name_label="maybe") == 1

        # The next command finds the connection working.
        assert await env.client.call("vm.start", {"id": vm_id}) is True
        assert env.app.objects.get(vm_id)["power_state"] == "Running"


async def test_command_gives_up_when_no_master_comes_back(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        commands_of(env.app.services).failover_timeout = 1.0
        vm_id = (await env.vm_in_state("Halted"))["id"]
        for host_ref in env.sim.pool.host_refs:
            await env.sim.stop_host(host_ref)
        started = time.monotonic()
        with pytest.raises(RpcError) as raised:
            await env.client.call("vm.start", {"id": vm_id})
        assert raised.value.code == 9
        assert raised.value.data["objectId"] == vm_id
        assert time.monotonic() - started < 5
        assert env.sim_record("VM", vm_id)["power_state"] == "Halted"


async def test_only_calls_that_cannot_have_reached_a_host_are_retried() -> None:
    """The transport says whether a request may have been written, against real sockets:
    refused → not sent (a retry is safe); reset after the request arrived → sent."""
    method = "Async.VM.start"
    transport = Transport()

    async def post(port: int) -> TransportError:
        with pytest.raises(TransportError) as raised:
            await transport.post(
                URL(f"http://127.0.0.1:{port}/jsonrpc"),
                b"{}",
                "application/json",
                timeout=2.0,
                method=method,
            )
        return raised.value

    async def reset_after_reading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await reader.read(1)  # the request has arrived: then the host dies
        writer.transport.abort()

    server = await asyncio.start_server(reset_after_reading, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await post(port)).sent
    finally:
        server.close()
        await server.wait_closed()
    assert not (await post(port)).sent  # now nothing listens: refused
    await transport.close()
