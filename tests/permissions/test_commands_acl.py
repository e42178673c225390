"""Object permissions of commands, through JSON-RPC against the simulator: each action checks
the caller's permission on each object it acts on (XO's `resolve` entries), with the one check
of the daemon (ACL roles, inheritance, global levels)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.api.test_commands_support import Env, commands_env
from tests.permissions.support import (
    grant,
    new_user,
    not_allowed,
    refusal,
    signed_in,
)


async def test_an_operator_starts_and_stops_but_cannot_delete_or_clone(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = await env.vm_in_state("Halted")
        vm_id = vm["id"]
        operator = await new_user(env, "operator@x.test")
        await grant(env, operator, vm_id, "operator")
        async with signed_in(env, "operator@x.test") as client:
            assert await client.call("vm.start", {"id": vm_id}) is True
            assert (await env.object(vm_id))["power_state"] == "Running"
            assert await client.call("vm.stop", {"id": vm_id, "force": True}) is True
            assert (await env.object(vm_id))["power_state"] == "Halted"
            for method, params in (
                ("vm.delete", {"id": vm_id}),
                ("vm.clone", {"id": vm_id, "name": "mine", "full_copy": False}),
                ("vm.set", {"id": vm_id, "name_label": "mine"}),
                ("tag.add", {"id": vm_id, "tag": "mine"}),
            ):
                error = await refusal(client, method, params)
                assert (error.code, error.data) == (
                    2,
                    not_allowed("administrate", vm_id, "VM"),
                ), method
            # Refused before anything ran: `_async` gets the refusal, not a task.
            error = await refusal(client, "vm.delete", {"id": vm_id, "_async": True})
            assert error.code == 2
            # Starting on a host needs `operate` on that host too.
            host_id = min(env.app.objects.by_type("host"))
            error = await refusal(client, "vm.start", {"id": vm_id, "host": host_id})
            assert (error.code, error.data) == (2, not_allowed("operate", host_id, "host"))
            # An unknown object is no such object (code 1), not a refusal.
            error = await refusal(client, "vm.start", {"id": "no-such-vm"})
            assert error.code == 1
        assert (await env.object(vm_id))["name_label"] == vm["name_label"]
        assert not (await env.object(vm_id))["tags"]
        clones = await env.objects({"type": "VM", "name_label": "mine"})
        assert clones == {}


async def test_a_viewer_and_a_reader_cannot_act(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        viewer = await new_user(env, "viewer@x.test")
        await grant(env, viewer, vm_id, "viewer")
        await new_user(env, "reader@x.test", "read")
        for email in ("viewer@x.test", "reader@x.test"):
            async with signed_in(env, email) as client:
                for method, params, permission in (
                    ("vm.start", {"id": vm_id}, "operate"),
                    ("vm.snapshot", {"id": vm_id}, "operate"),
                    ("vm.delete", {"id": vm_id}, "administrate"),
                ):
                    error = await refusal(client, method, params)
                    assert (error.code, error.data) == (
                        2,
                        not_allowed(permission, vm_id, "VM"),
                    ), (email, method)
        assert (await env.object(vm_id))["power_state"] == "Halted"


async def _running_vm_on_shared_storage(env: Env) -> dict[str, Any]:
    """A running VM with no disk on a local SR: halted, it lives in its pool (a VM with a local
    disk stays on that disk's host, where a host's ACL still covers it)."""
    objects = await env.objects()

    def shared(vbd_id: str) -> bool:
        vdi = objects.get(objects[vbd_id]["VDI"] or "")
        return vdi is None or objects[vdi["$SR"]]["shared"]

    vms = [o for o in objects.values() if o["type"] == "VM" and o["power_state"] == "Running"]
    return min((vm for vm in vms if all(shared(v) for v in vm["$VBDs"])), key=lambda v: v["id"])


async def test_permissions_inherited_from_the_host_and_the_pool(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        running = await _running_vm_on_shared_storage(env)
        host_id = running["$container"]
        pool_id = running["$pool"]
        operator = await new_user(env, "host-operator@x.test")
        await grant(env, operator, host_id, "operator")
        admin = await new_user(env, "pool-admin@x.test")
        await grant(env, admin, pool_id, "admin")
        async with signed_in(env, "host-operator@x.test") as client:
            # `operate` on a host: on the VMs running there, while they run there.
            assert await client.call("vm.stop", {"id": running["id"], "force": True}) is True
            # Halted, the VM (no local disk) lives in its pool, out of the host's ACL.
            async with asyncio.timeout(10):  # the cache showing the halted VM on its pool
                while (await env.object(running["id"]) or {}).get("$container") != pool_id:
                    await asyncio.sleep(0.02)
            error = await refusal(client, "vm.start", {"id": running["id"]})
            assert (error.code, error.data) == (2, not_allowed("operate", running["id"], "VM"))
            # Restarting a host is operating it; disabling it is administrating it.
            error = await refusal(client, "host.disable", {"id": host_id})
            assert (error.code, error.data) == (2, not_allowed("administrate", host_id, "host"))
        async with signed_in(env, "pool-admin@x.test") as client:
            assert await client.call("vm.start", {"id": running["id"]}) is True
            assert await client.call("vm.set", {"id": running["id"], "name_label": "pa"}) is True
            # Read on the same connection: it waits for its own writes.
            seen = await client.call("xo.getAllObjects", {"filter": {"id": running["id"]}})
            assert seen[running["id"]]["name_label"] == "pa"


async def test_vm_create_needs_administrate_on_the_templates_pool(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        template = min(env.app.objects.by_type("VM-template").values(), key=lambda t: t["id"])
        pool_id = template["$pool"]
        operator = await new_user(env, "pool-operator@x.test")
        await grant(env, operator, pool_id, "operator")
        admin = await new_user(env, "pool-admin@x.test")
        await grant(env, admin, pool_id, "admin")
        params = {"template": template["id"], "name_label": "self-made"}
        async with signed_in(env, "pool-operator@x.test") as client:
            error = await refusal(client, "vm.create", params)
            assert (error.code, error.data) == (2, not_allowed("administrate", pool_id, "pool"))
        assert await env.objects({"type": "VM", "name_label": "self-made"}) == {}
        async with signed_in(env, "pool-admin@x.test") as client:
            vm_id = await client.call("vm.create", params)
            assert await client.call("vm.delete", {"id": vm_id}) is True
        assert await env.objects({"type": "VM", "name_label": "self-made"}) == {}


async def test_what_a_command_touches_is_checked_too(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = await env.vm_in_state("Halted")
        vm_id = vm["id"]
        owner = await new_user(env, "owner@x.test")
        await grant(env, owner, vm_id, "admin")
        srs = [s for s in env.app.objects.by_type("SR").values() if s["content_type"] == "user"]
        sr = min(srs, key=lambda s: s["id"])
        other_host = max(env.app.objects.by_type("host"))
        async with signed_in(env, "owner@x.test") as client:
            # A new disk on an SR: `administrate` on the SR.
            error = await refusal(
                client, "disk.create", {"name": "d", "size": 2**20, "sr": sr["id"], "vm": vm_id}
            )
            assert (error.code, error.data) == (2, not_allowed("administrate", sr["id"], "SR"))
            # A migration: `administrate` on the target host.
            error = await refusal(client, "vm.migrate", {"vm": vm_id, "targetHost": other_host})
            assert (error.code, error.data) == (
                2,
                not_allowed("administrate", other_host, "host"),
            )
        await grant(env, owner, sr["id"], "admin")
        async with signed_in(env, "owner@x.test") as client:
            vdi_id = await client.call(
                "disk.create", {"name": "d", "size": 2**20, "sr": sr["id"], "vm": vm_id}
            )
            assert (await env.object(vdi_id))["$SR"] == sr["id"]


async def test_write_users_act_on_everything_admins_bypass(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        await new_user(env, "writer@x.test", "write")
        async with signed_in(env, "writer@x.test") as client:
            assert await client.call("vm.start", {"id": vm_id}) is True
            assert await client.call("vm.set", {"id": vm_id, "name_label": "w"}) is True
            assert await client.call("vm.stop", {"id": vm_id, "force": True}) is True
        assert (await env.object(vm_id))["name_label"] == "w"
        # Admin methods stay admin-only for them.
        async with signed_in(env, "writer@x.test") as client:
            error = await refusal(client, "user.getAll", {})
            assert (error.code, error.data) == (2, {"permission": "admin", "object": {}})


async def test_reads_and_transfers_of_one_object(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = await env.vm_in_state("Halted")
        vm_id = vm["id"]
        viewer = await new_user(env, "viewer@x.test")
        await grant(env, viewer, vm_id, "viewer")
        disk = next(
            vdi
            for vdi in env.app.objects.by_type("VDI").values()
            if any(env.app.objects.get(vbd)["VM"] == vm_id for vbd in vdi["$VBDs"])
        )
        async with signed_in(env, "viewer@x.test") as client:
            # `view` on a VM gives `view` on its disks (through their VBDs): a download.
            answer = await client.call("vdi.exportContent", {"id": disk["id"], "format": "raw"})
            assert answer["$getFrom"].startswith("/api/")
            # An export of the VM, an import into its disk: more than viewing.
            error = await refusal(client, "vm.export", {"vm": vm_id})
            assert (error.code, error.data) == (2, not_allowed("administrate", vm_id, "VM"))
            error = await refusal(client, "vdi.importContent", {"id": disk["id"]})
            assert (error.code, error.data) == (2, not_allowed("operate", disk["id"], "VDI"))
            # A host the user has no right on.
            host_id = min(env.app.objects.by_type("host"))
            error = await refusal(client, "host.getSchedulerGranularity", {"id": host_id})
            assert (error.code, error.data) == (2, not_allowed("view", host_id, "host"))


async def test_task_wait_for_the_user_who_started_it(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        operator = await new_user(env, "operator@x.test")
        await grant(env, operator, vm_id, "operator")
        other = await new_user(env, "other@x.test")
        await grant(env, other, vm_id, "viewer")
        async with signed_in(env, "operator@x.test") as client:
            task_id = await client.call("vm.start", {"id": vm_id, "_async": True})
            async with signed_in(env, "other@x.test") as stranger:
                error = await refusal(stranger, "task.wait", {"id": task_id})
                assert (error.code, error.data["permission"]) == (2, "view")
            assert await client.call("task.wait", {"id": task_id}) is True
        assert (await env.object(vm_id))["power_state"] == "Running"
