"""Actions outlive their caller, never run twice on a broken answer, never wait forever, and
honour a server's readOnly and httpProxy settings."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.api.harness import RpcError, connect, running_xod
from tests.api.test_commands_support import (
    TEST_FAILOVER_TIMEOUT,
    Env,
    commands_env,
    wait_synced,
)
from tests.sim.transfer_helpers import MiB, expected_raw, small_vdi
from tests.xapi.proxy import FrontProxy
from xod.api.jobs import commands_of
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator


async def _task_running(env: Env, name_label: str) -> None:
    async with asyncio.timeout(5):
        while not any(
            t["name_label"] == name_label for t in env.app.objects.by_type("task").values()
        ):
            await asyncio.sleep(0.02)


async def _start_then_hang_up(env: Env, method: str, params: dict, task_name: str) -> None:
    """Send `method` on a connection of its own, and close it while `task_name` runs."""
    async with connect(env.app) as caller:
        await caller.sign_in()
        await caller.send_raw(
            orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        )
        await _task_running(env, task_name)


async def _until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def _sim_tasks(env: Env) -> list[str]:
    return [t["name_label"] for t in env.sim.pool.db.tables["task"].values()]


async def test_vm_delete_completes_after_its_caller_hangs_up(tmp_path: Path) -> None:
    async with commands_env(tmp_path, op_durations={"VM.destroy": 0.5}) as env:
        vm = env.app.objects.get((await env.vm_in_state("Halted"))["id"])
        disks = [
            env.app.objects.get(env.app.objects.get(vbd)["VDI"])["_xapiRef"]
            for vbd in vm["$VBDs"]
            if not env.app.objects.get(vbd)["is_cd_drive"]
        ]
        assert disks
        await _start_then_hang_up(
            env, "vm.delete", {"id": vm["id"], "deleteDisks": True}, "Async.VM.destroy"
        )
        # The VM and then its disks go, and xod destroys every task it started.
        vdis = env.sim.pool.db.tables["VDI"]
        await _until(lambda: not any(ref in vdis for ref in disks))
        await _until(lambda: not _sim_tasks(env))
        assert vm["_xapiRef"] not in env.sim.pool.db.tables["VM"]


async def test_host_restart_completes_after_its_caller_hangs_up(tmp_path: Path) -> None:
    async with commands_env(tmp_path, hosts=3, op_durations={"host.disable": 0.5}) as env:
        hosts = await env.objects({"type": "host"})
        host_id = max(
            hosts, key=lambda h: len([v for v in env.app.objects.by_type("VM").values()
                                      if v["$container"] == h])
        )  # fmt: skip
        host_ref = hosts[host_id]["_xapiRef"]
        await _start_then_hang_up(env, "host.restart", {"id": host_id}, "Async.host.disable")
        # Disabled, evacuated, rebooted: enabled again with its VMs elsewhere — not left
        # disabled halfway.
        await _until(lambda: not _sim_tasks(env))
        db = env.sim.pool.db
        assert db.get("host", host_ref)["enabled"] is True
        residents = [
            vm for vm in db.get("host", host_ref)["resident_VMs"]
            if not db.tables["VM"][vm]["is_control_domain"]
        ]  # fmt: skip
        assert residents == []


async def test_vm_stop_with_fallback_completes_after_its_caller_hangs_up(tmp_path: Path) -> None:
    async with commands_env(tmp_path, op_durations={"VM.clean_shutdown": 5.0}) as env:
        vm_id = (await env.vm_in_state("Running"))["id"]
        env.sim.pool.call_log.clear()
        await _start_then_hang_up(
            env, "vm.stop", {"id": vm_id, "forceShutdownDelay": 300}, "Async.VM.clean_shutdown"
        )
        # The clean shutdown is cancelled after 0.3 s and a hard one done: no stray task.
        await _until(lambda: env.sim_record("VM", vm_id)["power_state"] == "Halted")
        await _until(lambda: not _sim_tasks(env))
        calls = list(env.sim.pool.call_log)
        assert calls.index("Async.VM.hard_shutdown") > calls.index("task.cancel")


async def test_a_garbled_answer_after_the_call_ran_is_not_sent_again(tmp_path: Path) -> None:
    async with (
        Simulator(SimConfig(hosts=1, vms=6, templates=1, seed=7)) as sim,
        FrontProxy(sim.master_url) as front,
        running_xod(tmp_path, failover_timeout=TEST_FAILOVER_TIMEOUT) as app,
        connect(app) as client,
    ):
        await client.sign_in()
        server_id = await client.call(
            "server.add", {"host": front.url, "username": "root", "password": "password"}
        )
        await wait_synced(app, server_id)
        vm_id = next(
            i for i, v in app.objects.by_type("VM").items() if v["power_state"] == "Halted"
        )
        # The pool runs the clone; its answer reaches xod broken.
        front.garbled_methods.add("Async.VM.clone")
        with pytest.raises(RpcError) as raised:
            await client.call("vm.clone", {"id": vm_id, "name": "once", "full_copy": False})
        assert raised.value.code == 21 and raised.value.data["code"] == "OUTCOME_UNKNOWN"
        # It did run, once: xod did not send it again.
        vms = sim.pool.db.tables["VM"]
        await _until(lambda: any(r["name_label"] == "once" for r in vms.values()))
        await asyncio.sleep(0.3)
        assert [r["name_label"] for r in vms.values()].count("once") == 1


async def test_waiting_for_a_task_ends_when_the_pool_is_gone_for_good(tmp_path: Path) -> None:
    async with commands_env(tmp_path, op_durations={"VM.clone": 60.0}) as env:
        commands = commands_of(env.app.services)
        commands.failover_timeout = 1.0
        commands.task_recheck = 0.2
        vm_id = (await env.vm_in_state("Halted"))["id"]
        async with connect(env.app) as caller:
            await caller.sign_in()
            clone = asyncio.create_task(
                caller.call("vm.clone", {"id": vm_id, "name": "lost", "full_copy": False})
            )
            await _task_running(env, "Async.VM.clone")
            for host_ref in env.sim.pool.host_refs:
                await env.sim.stop_host(host_ref)
            started = time.monotonic()
            with pytest.raises(RpcError) as raised:
                await asyncio.wait_for(clone, 10)
        assert raised.value.data["code"] == "OUTCOME_UNKNOWN"
        assert time.monotonic() - started < 5


async def test_read_only_server_refuses_actions(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        await env.client.call("server.set", {"id": env.server_id, "readOnly": True})
        with pytest.raises(RpcError) as raised:
            await env.client.call("vm.start", {"id": vm_id})
        assert raised.value.code == 5
        assert "read-only" in raised.value.data["reason"]
        assert env.sim_record("VM", vm_id)["power_state"] == "Halted"
        # Reading still works; writing again once the flag is off.
        assert vm_id in await env.objects({"type": "VM"})
        await env.client.call("server.set", {"id": env.server_id, "readOnly": False})
        assert await env.client.call("vm.start", {"id": vm_id}) is True


async def test_http_proxy_carries_the_pool_traffic(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env, FrontProxy(env.sim.master_url) as proxy:
        await env.client.call("server.remove", {"id": env.server_id})
        server_id = await env.client.call(
            "server.add",
            {
                "host": env.sim.master_url,
                "username": "root",
                "password": "password",
                "httpProxy": proxy.url,
            },
        )
        await wait_synced(env.app, server_id)
        assert "session.login_with_password" in proxy.methods
        await _until(lambda: "event.from" in proxy.methods)  # the event stream too
        # And the transfers: an export comes through the proxy, whole.
        ref, vdi = small_vdi(env.sim, 3 * MiB)
        await _until(lambda: env.app.objects.get(vdi) is not None)
        get = await env.client.call("vdi.exportContent", {"id": vdi, "format": "raw"})
        async with aiohttp.ClientSession() as http, http.get(env.app.url + get["$getFrom"]) as got:
            assert (got.status, await got.read()) == (200, expected_raw(env.sim, ref))
        assert "/export_raw_vdi/" in proxy.requests
        await env.client.call("server.remove", {"id": server_id})  # before the proxy stops
