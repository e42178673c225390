"""Every optional param an action publishes does what it says (through xod and the simulator),
and the ones xod does not honour are refused instead of ignored."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api.harness import RpcError
from tests.api.test_commands_support import Env, commands_env


async def _error(env: Env, method: str, params: dict) -> RpcError:
    with pytest.raises(RpcError) as raised:
        await env.client.call(method, params)
    return raised.value


async def _sim_change(env: Env, cls: str, object_id: str, changes: dict, shown: Callable) -> None:
    """Change a record on the pool (as another client would), then wait, bounded, until the
    cache shows it (`shown(cached object)`)."""
    env.sim.pool.db.update(cls, (await env.object(object_id))["_xapiRef"], changes)
    async with asyncio.timeout(5):
        while not shown(await env.object(object_id)):
            await asyncio.sleep(0.02)


async def _block(env: Env, vm_id: str, blocked: dict[str, str]) -> None:
    await _sim_change(
        env,
        "VM",
        vm_id,
        {"blocked_operations": blocked},
        lambda vm: vm["blockedOperations"] == blocked,
    )


async def test_vm_start_refuses_a_mac_in_use_unless_bypassed(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        running = await env.vm_in_state("Running")
        halted = await env.vm_in_state("Halted")
        assert running["VIFs"] and halted["VIFs"]
        mac = (await env.object(running["VIFs"][0]))["MAC"]
        await _sim_change(
            env, "VIF", halted["VIFs"][0], {"MAC": mac}, lambda vif: vif["MAC"] == mac
        )
        error = await _error(env, "vm.start", {"id": halted["id"]})
        assert (error.code, error.data) == (
            21,
            {"objectId": halted["id"], "code": "DUPLICATED_MAC_ADDRESS"},
        )
        assert (await env.object(halted["id"]))["power_state"] == "Halted"
        params = {"id": halted["id"], "bypassMacAddressesCheck": True}
        assert await env.client.call("vm.start", params) is True
        assert (await env.object(halted["id"]))["power_state"] == "Running"


async def test_vm_start_force_lifts_the_start_blocks(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        await _block(env, vm_id, {"start": "under maintenance", "destroy": "true"})
        error = await _error(env, "vm.start", {"id": vm_id})
        assert (error.code, error.data) == (
            5,
            {"operation": "Start", "reason": "under maintenance"},
        )
        assert await env.client.call("vm.start", {"id": vm_id, "force": True}) is True
        vm = await env.object(vm_id)
        assert vm["power_state"] == "Running"
        assert vm["blockedOperations"] == {"destroy": "true"}  # only the start blocks go


@pytest.mark.parametrize(
    ("method", "blocked_operation", "state"),
    [("vm.stop", "clean_shutdown", "Halted"), ("vm.restart", "clean_reboot", "Running")],
)
async def test_bypass_blocked_operation_lifts_the_block_meanwhile(
    tmp_path: Path, method: str, blocked_operation: str, state: str
) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Running"))["id"]
        domid = env.sim_record("VM", vm_id)["domid"]
        blocked = {blocked_operation: "ask the owner"}
        await _block(env, vm_id, blocked)
        error = await _error(env, method, {"id": vm_id})
        assert (error.code, error.data) == (19, {"objectId": vm_id, "code": "ask the owner"})
        assert env.sim_record("VM", vm_id)["domid"] == domid
        assert await env.client.call(method, {"id": vm_id, "bypassBlockedOperation": True}) is True
        vm = await env.object(vm_id)
        assert vm["power_state"] == state and env.sim_record("VM", vm_id)["domid"] != domid
        assert vm["blockedOperations"] == blocked  # put back, with its reason


async def test_vm_delete_protected_vm(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        await _block(env, vm_id, {"destroy": "true"})
        error = await _error(env, "vm.delete", {"id": vm_id})
        assert error.code == 5
        assert error.error["message"] == (
            "forbidden operation: destroy is blocked: protected from accidental deletion"
        )
        assert (await env.object(vm_id)) is not None
        params = {"id": vm_id, "forceBlockedOperation": True}
        assert await env.client.call("vm.delete", params) is True
        assert (await env.object(vm_id)) is None


async def test_vm_delete_default_template(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        templates = await env.objects({"type": "VM-template", "isDefaultTemplate": True})
        first, second = sorted(templates)[:2]
        error = await _error(env, "vm.delete", {"id": first})
        assert (error.code, error.data) == (
            25,
            {"actual": True, "expected": False, "object": first, "property": "isDefaultTemplate"},
        )
        assert (await env.object(first)) is not None
        params = {"id": first, "forceDeleteDefaultTemplate": True}
        assert await env.client.call("vm.delete", params) is True
        assert (await env.object(first)) is None
        # `force` implies both overrides.
        assert await env.client.call("vm.delete", {"id": second, "force": True}) is True
        assert (await env.object(second)) is None


async def test_vm_migrate_force_skips_the_cpu_check(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        assert await env.client.call("vm.start", {"id": vm_id}) is True
        here = (await env.object(vm_id))["$container"]
        target = next(h for h in await env.objects({"type": "host"}) if h != here)
        cpu = env.sim_record("host", target)["cpu_info"]
        env.sim.pool.db.update(
            "host",
            (await env.object(target))["_xapiRef"],
            {"cpu_info": {**cpu, "vendor": "AuthenticAMD"}},
        )
        error = await _error(env, "vm.migrate", {"vm": vm_id, "targetHost": target})
        assert (error.code, error.data["code"]) == (21, "VM_INCOMPATIBLE_WITH_THIS_HOST")
        assert (await env.object(vm_id))["$container"] == here
        params = {"vm": vm_id, "targetHost": target, "force": True}
        assert await env.client.call("vm.migrate", params) is True
        assert (await env.object(vm_id))["$container"] == target


def _disks(env: Env, vm_id: str) -> list[dict | None]:
    cached = env.app.objects.get
    vbds = [cached(vbd) for vbd in cached(vm_id)["$VBDs"]]
    return [cached(vbd["VDI"]) for vbd in vbds if not vbd["is_cd_drive"] and vbd["VDI"]]


def _local_sr(env: Env, host_id: str) -> str:
    return next(
        sr_id
        for sr_id, sr in env.app.objects.by_type("SR").items()
        if not sr["shared"]
        and any(env.app.objects.get(pbd)["host"] == host_id for pbd in sr["$PBDs"])
    )


async def test_vm_migrate_moves_disks_with_sr_and_map_vdis_srs(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Running"))["id"]
        here = (await env.object(vm_id))["$container"]
        target = next(h for h in await env.objects({"type": "host"}) if h != here)
        local = _local_sr(env, target)
        disks = _disks(env, vm_id)
        assert disks and all(disk["$SR"] != local for disk in disks)

        # sr: every disk moves there.
        params = {"vm": vm_id, "targetHost": target, "sr": local}
        assert await env.client.call("vm.migrate", params) is True
        assert (await env.object(vm_id))["$container"] == target
        assert {disk["$SR"] for disk in _disks(env, vm_id)} == {local}

        # mapVdisSrs: the named disk moves; the others stay where the target host reaches them.
        back = here
        home = _local_sr(env, back)
        moved = disks[0]["id"]
        params = {"vm": vm_id, "targetHost": back, "mapVdisSrs": {moved: home}}
        env.sim.pool.call_log.clear()
        assert await env.client.call("vm.migrate", params) is True
        assert (await env.object(vm_id))["$container"] == back
        assert (await env.object(moved))["$SR"] == home
        calls = list(env.sim.pool.call_log)
        assert calls.index("Async.VM.migrate_send") > calls.index("Async.VM.assert_can_migrate")

        # Bad maps.
        error = await _error(env, "vm.migrate", {**params, "mapVdisSrs": {"nope": home}})
        assert (error.code, error.data) == (1, {"id": "nope", "type": "VDI"})
        other_vm = next(
            v for v in (await env.objects({"type": "VM", "power_state": "Halted"})) if v != vm_id
        )
        foreign = _disks(env, other_vm)[0]["id"]
        error = await _error(env, "vm.migrate", {**params, "mapVdisSrs": {foreign: home}})
        assert (
            error.code == 10 and error.data["errors"][0]["instancePath"] == f"/mapVdisSrs/{foreign}"
        )
        error = await _error(env, "vm.migrate", {**params, "mapVdisSrs": {moved: 7}})
        assert error.code == 10


async def test_vm_migrate_bypass_assert_skips_the_pre_check(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Running"))["id"]
        here = (await env.object(vm_id))["$container"]
        target = next(h for h in await env.objects({"type": "host"}) if h != here)
        local = _local_sr(env, target)
        params = {"vm": vm_id, "targetHost": target, "sr": local, "bypassAssert": True}
        env.sim.pool.call_log.clear()
        assert await env.client.call("vm.migrate", params) is True
        calls = list(env.sim.pool.call_log)
        assert "Async.VM.migrate_send" in calls and "Async.VM.assert_can_migrate" not in calls
        assert (await env.object(vm_id))["$container"] == target


async def test_unhonoured_params_are_refused(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        host_id = min(await env.objects({"type": "host"}))
        sr_id = min(await env.objects({"type": "SR"}))
        refused = [
            ("vm.copy", {"vm": vm_id, "sr": sr_id, "compress": True}),
            ("vm.migrate", {"vm": vm_id, "targetHost": host_id, "mapVifsNetworks": {}}),
            ("vm.migrate", {"vm": vm_id, "targetHost": host_id, "migrationNetwork": "n"}),
            ("host.restart", {"id": host_id, "bypassBackupCheck": True}),
            ("host.restart", {"id": host_id, "suspendResidentVms": False}),
            (
                "host.setMaintenanceMode",
                {"id": host_id, "maintenance": True, "vmsToForceMigrate": []},
            ),
        ]
        for method, params in refused:
            error = await _error(env, method, params)
            assert error.code == 10, (method, params)
        info = await env.client.call("system.getMethodsInfo")
        assert "compress" not in info["vm.copy"]["params"]
        assert set(info["vm.migrate"]["params"]) == {
            "vm",
            "targetHost",
            "sr",
            "mapVdisSrs",
            "force",
            "bypassAssert",
        }
        assert set(info["host.restart"]["params"]) == {"id", "force"}
