"""xod-cli as a user with an operator role on one VM: the power actions work, a refused one
says which permission on which object it lacked."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import lab

EMAIL = "cli-operator@x.test"
PASSWORD = "pw-cli"


async def test_an_operator_through_xod_cli(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        vms = await env.client.call("xo.getAllObjects", {"filter": {"type": "VM"}})
        vm_id = min(i for i, vm in vms.items() if vm["power_state"] == "Running")
        user_id = await env.client.call(
            "user.create", {"email": EMAIL, "password": PASSWORD, "permission": "none"}
        )
        await env.client.call(
            "acl.add", {"subject": user_id, "object": vm_id, "action": "operator"}
        )
        registered = await env.cli("register", env.url, EMAIL, PASSWORD)
        assert registered.code == 0, registered
        stopped = await env.cli("vm.stop", f"id={vm_id}", "force=true", "--no-progress")
        assert stopped.code == 0, stopped
        refused = await env.cli("vm.delete", f"id={vm_id}")
        assert refused.code != 0
        assert (
            f"vm.delete: not enough permissions: administrate on VM {vm_id} (code 2)"
            in refused.stderr
        ), refused
        vm = (await env.client.call("xo.getAllObjects", {"filter": {"id": vm_id}}))[vm_id]
        assert vm["power_state"] == "Halted"
