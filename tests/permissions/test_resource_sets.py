"""Resource sets (self-service) in commands, through JSON-RPC against the simulator: a subject
creates VMs from what the set offers, within its limits (code 24 past them, nothing made), owns
what it creates, and gives the usage back when it deletes; admins are not limited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.test_commands_support import Env, commands_env
from tests.api.test_vm_create_support import GiB
from tests.permissions.support import (
    acls_on,
    by_label,
    new_resource_set,
    new_user,
    not_allowed,
    refusal,
    resource_set,
    signed_in,
)


def offered(env: Env) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    template = min(env.app.objects.by_type("VM-template").values(), key=lambda t: t["id"])
    sr = by_label(env, "SR", "NFS storage")
    network = by_label(env, "network", "Pool-wide network associated with eth0")
    return template, sr, network


async def usage(env: Env, set_id: str) -> dict[str, int]:
    limits = (await resource_set(env, set_id))["limits"]
    return {key: limit["usage"] for key, limit in limits.items()}


async def test_a_subject_creates_within_the_limits(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        template, sr, network = offered(env)
        user_id = await new_user(env, "self@x.test")
        rs = await new_resource_set(
            env,
            subjects=[user_id],
            objects=[template["id"], sr["id"], network["id"]],
            limits={"cpus": 4, "memory": 4 * GiB, "disk": 20 * GiB, "vms": 2},
            tags=["sandbox"],
        )
        params = {
            "resourceSet": rs["id"],
            "template": template["id"],
            "name_label": "mine",
            "CPUs": 2,
            "memoryMax": 2 * GiB,
            "VDIs": [{"SR": sr["id"], "size": 10 * GiB, "type": "user"}],
            "VIFs": [{"network": network["id"]}],
        }
        async with signed_in(env, "self@x.test") as client:
            vm_id = await client.call("vm.create", params)
            vm = await env.object(vm_id)
            assert vm is not None and vm["resourceSet"] == rs["id"]
            assert vm["tags"] == ["sandbox"]
            assert (await usage(env, rs["id"])) == {
                "cpus": 2,
                "memory": 2 * GiB,
                "disk": 10 * GiB,
                "vms": 1,
            }
            # The creator administrates its VM (an `admin` ACL).
            assert await acls_on(env, vm_id) == [(user_id, "admin")]
            assert await client.call("vm.start", {"id": vm_id}) is True
            assert await client.call("vm.stop", {"id": vm_id, "force": True}) is True
            # Past each limit: code 24 with XO's data, and nothing is made.
            for key, excess, available in (
                ("CPUs", 3, 2),
                ("memoryMax", 3 * GiB, 2 * GiB),
            ):
                error = await refusal(client, "vm.create", {**params, key: excess})
                resource = "cpus" if key == "CPUs" else "memory"
                assert (error.code, error.data) == (
                    24,
                    [
                        {
                            "resourceSet": rs["id"],
                            "resourceType": resource,
                            "available": available,
                            "requested": excess,
                        }
                    ],
                ), key
            big = {**params, "VDIs": [{"SR": sr["id"], "size": 11 * GiB, "type": "user"}]}
            error = await refusal(client, "vm.create", big)
            assert error.code == 24 and error.data[0]["resourceType"] == "disk"
            assert error.data[0]["available"] == 10 * GiB
            assert len(await env.objects({"type": "VM", "name_label": "mine"})) == 1
            assert (await usage(env, rs["id"]))["vms"] == 1
            # Growing the VM past the set: refused; within it: charged.
            error = await refusal(client, "vm.set", {"id": vm_id, "CPUs": 5})
            assert error.code == 24 and error.data[0]["resourceType"] == "cpus"
            assert await client.call("vm.set", {"id": vm_id, "CPUs": 4}) is True
            assert (await usage(env, rs["id"]))["cpus"] == 4
            # A disk for it: from the set's SRs, charged to the set.
            vdi_id = await client.call(
                "disk.create", {"name": "data", "size": 5 * GiB, "sr": sr["id"], "vm": vm_id}
            )
            assert (await usage(env, rs["id"]))["disk"] == 15 * GiB
            error = await refusal(
                client, "disk.create", {"name": "x", "size": 6 * GiB, "sr": sr["id"], "vm": vm_id}
            )
            assert error.code == 24
            assert await client.call("vdi.delete", {"id": vdi_id}) is True
            assert (await usage(env, rs["id"]))["disk"] == 10 * GiB
            # Deleting it gives everything back.
            assert await client.call("vm.delete", {"id": vm_id, "deleteDisks": True}) is True
            assert (await usage(env, rs["id"])) == {"cpus": 0, "memory": 0, "disk": 0, "vms": 0}
            assert await acls_on(env, vm_id) == []


async def test_the_set_decides_who_and_what(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        template, sr, network = offered(env)
        member = await new_user(env, "member@x.test")
        await new_user(env, "outsider@x.test")
        rs = await new_resource_set(
            env, subjects=[member], objects=[template["id"], sr["id"]], limits={"vms": 5}
        )
        base = {"resourceSet": rs["id"], "template": template["id"], "name_label": "x"}
        async with signed_in(env, "outsider@x.test") as client:
            assert (await refusal(client, "vm.create", base)).code == 2
        async with signed_in(env, "member@x.test") as client:
            # A network the set does not offer.
            error = await refusal(
                client, "vm.create", {**base, "VIFs": [{"network": network["id"]}]}
            )
            assert error.code == 2
            error = await refusal(client, "vm.create", {**base, "resourceSet": "nope"})
            assert error.code == 1
            # Only admins move VMs between sets.
            vm_id = await client.call("vm.create", base)
            error = await refusal(client, "vm.set", {"id": vm_id, "resourceSet": None})
            assert error.code == 2
        assert (await usage(env, rs["id"]))["vms"] == 1
        assert len(await env.objects({"type": "VM", "name_label": "x"})) == 1


async def test_admins_are_not_limited_and_move_vms_between_sets(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        template, sr, _ = offered(env)
        member = await new_user(env, "member@x.test")
        rs = await new_resource_set(
            env, subjects=[member], objects=[template["id"], sr["id"]], limits={"cpus": 1}
        )
        other = await new_resource_set(env, "other", subjects=[member], limits={"cpus": 1})
        params = {"resourceSet": rs["id"], "template": template["id"], "name_label": "big"}
        vm_id = await env.client.call("vm.create", {**params, "CPUs": 3})
        assert (await usage(env, rs["id"]))["cpus"] == 3  # forced past the total
        # Moved to another set: the usage moves along, the set's subjects administrate it.
        assert await env.client.call("vm.set", {"id": vm_id, "resourceSet": other["id"]})
        assert (await usage(env, rs["id"]))["cpus"] == 0 and (await usage(env, other["id"]))[
            "cpus"
        ] == 3
        assert (await env.object(vm_id))["resourceSet"] == other["id"]
        assert await acls_on(env, vm_id) == [(member, "admin")]
        # Out of any set: its ACLs go.
        assert await env.client.call("vm.set", {"id": vm_id, "resourceSet": None})
        assert (await usage(env, other["id"]))["cpus"] == 0
        assert "resourceSet" not in (await env.object(vm_id) or {})
        assert await acls_on(env, vm_id) == []


async def test_copies_of_a_vm_in_a_set_and_sharing_it(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        template, sr, _ = offered(env)
        member = await new_user(env, "member@x.test")
        partner = await new_user(env, "partner@x.test")
        rs = await new_resource_set(
            env,
            subjects=[member, partner],
            objects=[template["id"], sr["id"]],
            limits={"vms": 2},
        )
        params = {
            "resourceSet": rs["id"],
            "template": template["id"],
            "name_label": "orig",
            "VDIs": [{"SR": sr["id"], "size": GiB, "type": "user"}],
        }
        async with signed_in(env, "member@x.test") as client:
            vm_id = await client.call("vm.create", params)
            # A subject of the VM's set snapshots it without rights on its SRs; the snapshot
            # weighs what the VM weighs and is the member's.
            snapshot_id = await client.call("vm.snapshot", {"id": vm_id})
            assert (await usage(env, rs["id"]))["vms"] == 2
            assert await acls_on(env, snapshot_id) == [(member, "admin")]
            # A clone reads the VM's disks: `operate` on their SRs, which the member lacks.
            error = await refusal(
                client, "vm.clone", {"id": vm_id, "name": "c", "full_copy": False}
            )
            assert (error.code, error.data) == (2, not_allowed("operate", sr["id"], "SR"))
            # Past the set's VM count.
            error = await refusal(client, "vm.create", params)
            assert error.code == 24 and error.data[0]["resourceType"] == "vms"
            # Shared: every subject of the set administrates it.
            assert await client.call("vm.set", {"id": vm_id, "share": True}) is True
            assert await acls_on(env, vm_id) == sorted([(member, "admin"), (partner, "admin")])
            # Reverting: the VM weighs what its snapshot weighs again.
            cpus = template["CPUs"]["number"]
            assert (await usage(env, rs["id"]))["cpus"] == 2 * cpus
            assert await client.call("vm.set", {"id": vm_id, "CPUs": cpus + 1}) is True
            assert (await usage(env, rs["id"]))["cpus"] == 2 * cpus + 1
            assert await client.call("vm.revert", {"snapshot": snapshot_id}) is True
            assert (await usage(env, rs["id"]))["cpus"] == 2 * cpus
            reverted = await env.object(vm_id)
            assert reverted is not None and reverted["CPUs"]["number"] == cpus
            assert reverted["resourceSet"] == rs["id"]
            # Deleting the VM: its snapshot (kept) leaves the set too.
            # (_waitForCache: the answer comes once every connection's cache shows it.)
            assert await client.call("vm.delete", {"id": vm_id, "_waitForCache": True}) is True
            assert (await usage(env, rs["id"]))["vms"] == 0
            assert "resourceSet" not in (await env.object(snapshot_id) or {})
            assert await acls_on(env, snapshot_id) == []
