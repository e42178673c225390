"""Actions (vm/host/sr/vdi/tag/task) through xod's JSON-RPC API against the simulator: the effect
is in the cache when the call returns (read straight from the store, no waiting), XAPI errors
arrive as XO codes, invalid params are refused with code 10."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.harness import RpcError, connect
from tests.api.test_commands_support import Env, commands_env
from xod.api.commands import ACTIONS
from xod.api.jobs import commands_of


async def _error(env: Env, method: str, params: dict) -> RpcError:
    with pytest.raises(RpcError) as raised:
        await env.client.call(method, params)
    return raised.value


async def test_vm_power_actions(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = await env.vm_in_state("Halted")
        vm_id = vm["id"]
        steps = [
            ("vm.start", {"id": vm_id}, "Running"),
            ("vm.pause", {"id": vm_id}, "Paused"),
            ("vm.unpause", {"id": vm_id}, "Running"),
            ("vm.pause", {"id": vm_id}, "Paused"),
            ("vm.resume", {"id": vm_id}, "Running"),  # resume unpauses a paused VM
            ("vm.suspend", {"id": vm_id}, "Suspended"),
            ("vm.start", {"id": vm_id}, "Running"),  # start resumes a suspended VM
            ("vm.restart", {"id": vm_id}, "Running"),
            ("vm.restart", {"id": vm_id, "force": True}, "Running"),
            ("vm.stop", {"id": vm_id}, "Halted"),
            ("vm.start", {"vm": vm_id}, "Running"),  # `vm=` works where the schema says `id`
            ("vm.stop", {"id": vm_id, "force": True}, "Halted"),
        ]
        for method, params, expected in steps:
            domid = env.sim_record("VM", vm_id)["domid"]
            assert await env.client.call(method, params) is True, method
            assert (await env.object(vm_id))["power_state"] == expected, method
            assert env.sim_record("VM", vm_id)["power_state"] == expected, method
            if method == "vm.restart":  # a reboot gives the VM a new domain
                assert env.sim_record("VM", vm_id)["domid"] != domid

        # Start on a chosen host.
        host_id = min((await env.objects({"type": "host"})).keys())
        assert await env.client.call("vm.start", {"id": vm_id, "host": host_id}) is True
        assert (await env.object(vm_id))["$container"] == host_id

        # XAPI errors → XO codes, OpaqueRefs → ids.
        error = await _error(env, "vm.start", {"id": vm_id})
        assert error.code == 13
        assert error.data == {"objectId": vm_id, "expected": "halted", "actual": "running"}
        assert error.error["message"] == "VM state is running but should be halted"
        await env.client.call("vm.stop", {"id": vm_id, "force": True})
        for method in (
            "vm.suspend",
            "vm.pause",
            "vm.restart",
            "vm.stop",
            "vm.unpause",
            "vm.resume",
        ):
            error = await _error(env, method, {"id": vm_id})
            assert (error.code, error.data["actual"]) == (13, "halted"), method

        # Invalid params, unknown objects.
        for method in ACTIONS:
            assert (await _error(env, method, {})).code == 10, method  # every one needs an id
            assert (await _error(env, method, {"id": vm_id, "bogus": 1})).code == 10, method
        assert (await _error(env, "vm.start", {"id": vm_id, "bogus": 1})).code == 10
        assert (await _error(env, "vm.stop", {"id": vm_id, "force": "yes"})).code == 10
        missing = await _error(env, "vm.start", {"id": "no-such-vm"})
        assert (missing.code, missing.data) == (1, {"id": "no-such-vm", "type": "VM"})
        host_as_vm = await _error(env, "vm.start", {"id": host_id})
        assert host_as_vm.code == 1


async def test_vm_clean_stop_needs_pv_drivers(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Running"))["id"]
        db = env.sim.pool.db
        metrics = env.sim_record("VM", vm_id)["guest_metrics"]
        db.update("VM_guest_metrics", metrics, {"PV_drivers_detected": False})
        error = await _error(env, "vm.stop", {"id": vm_id})
        assert (error.code, error.error["message"]) == (10, "clean shutdown requires PV drivers")
        assert (await env.object(vm_id))["power_state"] == "Running"
        # A forced stop needs no guest cooperation.
        assert await env.client.call("vm.stop", {"id": vm_id, "force": True}) is True
        assert (await env.object(vm_id))["power_state"] == "Halted"


async def test_vm_stop_falls_back_to_hard_shutdown(tmp_path: Path) -> None:
    # A clean shutdown that takes longer than forceShutdownDelay is replaced by a hard one.
    async with commands_env(tmp_path, op_durations={"VM.clean_shutdown": 5.0}) as env:
        vm_id = (await env.vm_in_state("Running"))["id"]
        env.sim.pool.call_log.clear()
        assert await env.client.call("vm.stop", {"id": vm_id, "forceShutdownDelay": 200}) is True
        assert (await env.object(vm_id))["power_state"] == "Halted"
        # The clean shutdown was cancelled, then a hard one did the job.
        calls = list(env.sim.pool.call_log)
        assert "Async.VM.clean_shutdown" in calls
        assert calls.index("task.cancel") > calls.index("Async.VM.clean_shutdown")
        assert calls.index("Async.VM.hard_shutdown") > calls.index("task.cancel")


async def test_vm_clone_copy_snapshot_revert_delete(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = await env.vm_in_state("Halted")
        vm_id = vm["id"]

        clone_id = await env.client.call(
            "vm.clone", {"id": vm_id, "name": "fast clone", "full_copy": False}
        )
        clone = await env.object(clone_id)
        assert clone["type"] == "VM" and clone["name_label"] == "fast clone"
        assert env.sim_record("VM", clone_id)["name_label"] == "fast clone"

        full_id = await env.client.call(
            "vm.clone", {"id": vm_id, "name": "full", "full_copy": True}
        )
        assert (await env.object(full_id))["name_label"] == "full"

        sr_id = min((await env.objects({"type": "SR", "content_type": "user"})).keys())
        copy_id = await env.client.call("vm.copy", {"vm": vm_id, "sr": sr_id})
        assert (await env.object(copy_id))["name_label"] == f"{vm['name_label']}_COPY"

        snapshot_id = await env.client.call(
            "vm.snapshot", {"id": vm_id, "name": "before", "description": "safe point"}
        )
        snapshot = await env.object(snapshot_id)
        assert snapshot["type"] == "VM-snapshot"
        assert (snapshot["name_label"], snapshot["name_description"]) == ("before", "safe point")
        assert snapshot_id in (await env.object(vm_id))["snapshots"]
        default_name = await env.client.call("vm.snapshot", {"id": vm_id})
        assert (await env.object(default_name))["name_label"].startswith(f"{vm['name_label']}_20")

        assert await env.client.call("vm.revert", {"snapshot": snapshot_id}) is True
        assert (await env.object(vm_id))["parent"] == snapshot_id  # the VM now derives from it

        # delete with deleteDisks: the VM and its own disks leave the cache.
        disks = [
            (await env.object(vbd))["VDI"]
            for vbd in (await env.object(clone_id))["$VBDs"]
            if not (await env.object(vbd))["is_cd_drive"] and (await env.object(vbd))["VDI"]
        ]
        assert disks
        assert await env.client.call("vm.delete", {"id": clone_id, "deleteDisks": True}) is True
        assert (await env.object(clone_id)) is None
        assert [vdi for vdi in disks if await env.object(vdi) is not None] == []
        assert await env.client.call("vm.delete", {"id": full_id}) is True
        assert (await env.object(full_id)) is None

        # XAPI errors.
        running_id = (await env.vm_in_state("Running"))["id"]
        assert (
            await _error(env, "vm.clone", {"id": running_id, "name": "x", "full_copy": False})
        ).code == 13
        error = await _error(env, "vm.revert", {"snapshot": vm_id})
        assert (error.code, error.data["type"]) == (1, "VM-snapshot")
        error = await _error(env, "vm.copy", {"vm": running_id, "sr": sr_id})
        assert (error.code, error.data["expected"]) == (13, "halted")
        # Operations an administrator blocked on the pool: XAPI's OPERATION_BLOCKED is XO's 19.
        db = env.sim.pool.db
        for object_id, operation in ((vm_id, "snapshot"), (snapshot_id, "revert")):
            db.update("VM", db.by_uuid("VM", object_id), {"blocked_operations": {operation: "no"}})
        error = await _error(env, "vm.snapshot", {"id": vm_id})
        assert (error.code, error.data) == (19, {"objectId": vm_id, "code": "no"})
        error = await _error(env, "vm.revert", {"snapshot": snapshot_id})
        assert (error.code, error.data) == (19, {"objectId": snapshot_id, "code": "no"})

        # Invalid params.
        assert (await _error(env, "vm.clone", {"id": vm_id, "name": "x"})).code == 10
        assert (await _error(env, "vm.clone", {"id": vm_id, "name": "", "full_copy": 1})).code == 10
        assert (await _error(env, "vm.copy", {"vm": vm_id})).code == 10
        assert (await _error(env, "vm.snapshot", {"id": vm_id, "saveMemory": "no"})).code == 10
        assert (await _error(env, "vm.delete", {"id": vm_id, "deleteDisks": "yes"})).code == 10
        assert (await _error(env, "vm.revert", {})).code == 10


async def test_vm_set(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        host_id = min((await env.objects({"type": "host"})).keys())
        assert (
            await env.client.call(
                "vm.set",
                {
                    "id": vm_id,
                    "name_label": "web-1",
                    "name_description": "",
                    "cpusMax": 4,
                    "CPUs": 3,
                    "memory": 2 * 1024**3,
                    "auto_poweron": True,
                    "high_availability": "restart",
                    "affinityHost": host_id,
                },
            )
            is True
        )
        vm = await env.object(vm_id)
        assert (vm["name_label"], vm["name_description"]) == ("web-1", "")
        assert vm["CPUs"] == {"max": 4, "number": 3}
        assert vm["memory"]["static"][1] == 2 * 1024**3
        assert vm["memory"]["dynamic"] == [2 * 1024**3, 2 * 1024**3]
        assert vm["auto_poweron"] is True and vm["high_availability"] == "restart"
        assert vm["affinityHost"] == host_id

        await env.client.call("vm.set", {"id": vm_id, "auto_poweron": False, "affinityHost": None})
        vm = await env.object(vm_id)
        assert vm is not None
        assert vm["auto_poweron"] is False and "affinityHost" not in vm

        # XAPI errors: a running VM's max vCPUs cannot change; a value xapi refuses is an
        # invalid parameter named after the XAPI field.
        running_id = (await env.vm_in_state("Running"))["id"]
        error = await _error(env, "vm.set", {"id": running_id, "cpusMax": 8})
        assert error.code == 13 and error.data["objectId"] == running_id
        # (a max below the vCPUs at startup lowers those first, as XO does: xapi refuses 0)
        error = await _error(env, "vm.set", {"id": vm_id, "cpusMax": 0})
        assert error.code == 10
        [entry] = error.data["errors"]
        assert (entry["instancePath"], entry["keyword"]) == (
            "/VCPUs_at_startup",
            "VALUE_NOT_SUPPORTED",
        )
        assert entry["params"]["params"][:2] == ["VCPUs_at_startup", "0"]

        # Invalid params.
        assert (await _error(env, "vm.set", {"id": vm_id, "high_availability": "often"})).code == 10
        assert (await _error(env, "vm.set", {"id": vm_id, "tags": ["a"]})).code == 10
        assert (await _error(env, "vm.set", {"id": vm_id, "CPUs": 0})).code == 10
        assert (await _error(env, "vm.set", {"name_label": "x"})).code == 10


async def test_vm_migrate(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = await env.vm_in_state("Running")
        hosts = sorted((await env.objects({"type": "host"})).keys())
        target = next(h for h in hosts if h != vm["$container"])
        assert await env.client.call("vm.migrate", {"vm": vm["id"], "targetHost": target}) is True
        assert (await env.object(vm["id"]))["$container"] == target

        halted_id = (await env.vm_in_state("Halted"))["id"]
        error = await _error(env, "vm.migrate", {"vm": halted_id, "targetHost": target})
        assert (error.code, error.data["actual"]) == (13, "halted")
        error = await _error(env, "vm.migrate", {"vm": vm["id"], "targetHost": "nowhere"})
        assert (error.code, error.data["type"]) == (1, "host")
        assert (await _error(env, "vm.migrate", {"vm": vm["id"]})).code == 10


async def test_host_actions(tmp_path: Path) -> None:
    async with commands_env(tmp_path, hosts=3) as env:
        hosts = await env.objects({"type": "host"})
        residents = {
            h: [v for v in (await env.objects({"type": "VM", "$container": h}))] for h in hosts
        }
        host_id = max(hosts, key=lambda h: len(residents[h]))
        assert residents[host_id]

        assert await env.client.call("host.disable", {"id": host_id}) is True
        assert (await env.object(host_id))["enabled"] is False
        assert await env.client.call("host.enable", {"id": host_id}) is True
        assert (await env.object(host_id))["enabled"] is True

        # A forced restart of a host that still runs VMs: xapi's HOST_IN_USE as XO's
        # operationFailed, refs as ids.
        error = await _error(env, "host.restart", {"id": host_id, "force": True})
        assert error.code == 21 and error.data["code"] == "HOST_IN_USE"
        assert error.data["objectId"] == host_id
        assert error.data["params"][0] == host_id
        assert error.data["params"][2] in residents[host_id]

        assert await env.client.call(
            "host.setMaintenanceMode", {"id": host_id, "maintenance": True}
        )
        assert (await env.object(host_id))["enabled"] is False
        still_there = [
            vm_id
            for vm_id, vm in env.app.objects.by_type("VM").items()
            if vm["$container"] == host_id
        ]
        assert still_there == []
        assert await env.client.call(
            "host.setMaintenanceMode", {"id": host_id, "maintenance": False}
        )
        assert (await env.object(host_id))["enabled"] is True

        # Restart: disable, evacuate, reboot; the host comes back enabled.
        assert await env.client.call("host.restart", {"id": host_id}) is True
        assert (await env.object(host_id))["enabled"] is True

        # Maintenance with nowhere to move the VMs: XAPI's NO_HOSTS_AVAILABLE is XO's 7.
        vm_id = (await env.vm_in_state("Halted"))["id"]
        await env.client.call("vm.start", {"id": vm_id, "host": host_id})
        for other in hosts:
            if other != host_id:
                await env.client.call("host.disable", {"id": other})
        error = await _error(env, "host.setMaintenanceMode", {"id": host_id, "maintenance": True})
        assert (error.code, error.error["message"]) == (7, "no hosts available")
        assert (await env.object(vm_id))["$container"] == host_id

        assert (await _error(env, "host.setMaintenanceMode", {"id": host_id})).code == 10
        assert (await _error(env, "host.enable", {"id": "nope"})).code == 1
        assert (await _error(env, "host.disable", {"id": host_id, "transient": 3})).code == 10


async def test_sr_vdi_and_tags(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        sr_id = min((await env.objects({"type": "SR", "content_type": "user"})).keys())
        assert await env.client.call("sr.set", {"id": sr_id, "name_label": "fast storage"})
        assert await env.client.call("sr.set", {"id": sr_id, "name_description": "NVMe"})
        sr = await env.object(sr_id)
        assert (sr["name_label"], sr["name_description"]) == (
            "fast storage",
            "NVMe",
        )

        running = await env.vm_in_state("Running")
        vbds = [env.app.objects.get(v) for v in running["$VBDs"]]
        busy_vdi = next(v["VDI"] for v in vbds if v["VDI"] and not v["is_cd_drive"])
        assert await env.client.call("vdi.set", {"id": busy_vdi, "name_label": "root disk"})
        assert (await env.object(busy_vdi))["name_label"] == "root disk"
        error = await _error(env, "vdi.delete", {"id": busy_vdi})
        assert error.code == 17
        assert error.data == {"objectId": busy_vdi, "operation": "destroy"}

        halted = await env.vm_in_state("Halted")
        vbds = [env.app.objects.get(v) for v in halted["$VBDs"]]
        free_vdi = next(v["VDI"] for v in vbds if v["VDI"] and not v["is_cd_drive"])
        assert await env.client.call("vdi.delete", {"id": free_vdi}) is True
        assert (await env.object(free_vdi)) is None

        # Tags on several object types.
        host_id = min((await env.objects({"type": "host"})).keys())
        for object_id in (halted["id"], host_id, sr_id, busy_vdi):
            assert await env.client.call("tag.add", {"id": object_id, "tag": "prod"}) is True
            assert "prod" in (await env.object(object_id))["tags"]
            assert await env.client.call("tag.remove", {"id": object_id, "tag": "prod"}) is True
            assert "prod" not in (await env.object(object_id))["tags"]

        # An object gone from the pool before the cache heard of it: XAPI's HANDLE_INVALID is
        # XO's noSuchObject (the cache is held still so that it cannot notice first).
        sync = env.app.pools.sync_of(env.server_id)
        commands_of(env.app.services).task_recheck = 0.2  # Async calls: ask the pool soon
        await sync.stop()
        env.sim.pool.db.delete("VDI", (await env.object(busy_vdi))["_xapiRef"])
        for method, params in (
            ("vdi.set", {"id": busy_vdi, "name_label": "gone"}),
            ("vdi.delete", {"id": busy_vdi}),
            ("tag.add", {"id": busy_vdi, "tag": "x"}),
        ):
            error = await _error(env, method, params)
            assert (error.code, error.data) == (1, {"id": busy_vdi, "type": "VDI"}), method
        sync.start()

        # Invalid params.
        assert (await _error(env, "sr.set", {"id": sr_id, "name_label": ""})).code == 10
        assert (await _error(env, "vdi.set", {"id": busy_vdi, "size": 3})).code == 10
        assert (await _error(env, "tag.add", {"id": sr_id})).code == 10
        assert (await _error(env, "tag.add", {"id": "nothing", "tag": "x"})).code == 1


async def test_permissions(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        # Declared once: discovery shows every action with its schema; as in XO, actions
        # publish no method permission (any signed-in user): each checks its objects.
        info = await env.client.call("system.getMethodsInfo")
        assert info.keys() >= ACTIONS and "task.wait" in info
        assert all("permission" not in info[name] for name in ACTIONS)
        # Discovery marks them (they accept `_async`); nothing else.
        assert {name for name, entry in info.items() if entry.get("async")} == ACTIONS
        assert info["vm.stop"]["params"]["forceShutdownDelay"] == {"type": "number", "default": 0}
        vm_id = (await env.vm_in_state("Halted"))["id"]
        for email, permission in (("r@x.test", "read"), ("w@x.test", "write")):
            await env.client.call(
                "user.create", {"email": email, "password": "pw", "permission": permission}
            )
        async with connect(env.app) as reader:
            await reader.sign_in("r@x.test", "pw")
            assert vm_id in await reader.call("xo.getAllObjects", {"filter": {"type": "VM"}})
            for method, params, permission in (
                ("vm.start", {"id": vm_id}, "operate"),
                ("vm.set", {"id": vm_id, "name_label": "mine"}, "administrate"),
                ("tag.add", {"id": vm_id, "tag": "x"}, "administrate"),
            ):
                with pytest.raises(RpcError) as raised:
                    await reader.call(method, params)
                assert raised.value.code == 2, method
                assert raised.value.data == {
                    "permission": permission,
                    "object": {"id": vm_id, "type": "VM"},
                }
            # An unknown object is no such object, whoever asks.
            with pytest.raises(RpcError) as raised:
                await reader.call("task.cancel", {"id": "any"})
            assert raised.value.code == 1
            assert (await env.object(vm_id))["power_state"] == "Halted"
        async with connect(env.app) as writer:
            await writer.sign_in("w@x.test", "pw")
            assert await writer.call("vm.start", {"id": vm_id}) is True
            assert (await env.object(vm_id))["power_state"] == "Running"
            # A failure the pool answered reaches non-admins too, as an XO error with its cause
            # (only unexpected failures stay opaque).
            with pytest.raises(RpcError) as raised:
                await writer.call("vm.set", {"id": vm_id, "CPUs": 64})  # the max first: halted only
            assert raised.value.code == 13
            assert raised.value.data["expected"] == "halted"
            for method in ("server.add", "user.create"):
                with pytest.raises(RpcError) as raised:
                    await writer.call(method, {"host": "h", "username": "u", "password": "p"})
                assert raised.value.code == 2, method
