"""REST actions run the JSON-RPC action as the caller: the same object check, refusals in the
REST error format (403)."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.rest.helpers import RestLab, rest_lab

PASSWORD = "pw-rest"


def basic(email: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{email}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


async def user_with_role(lab: RestLab, email: str, object_id: str, role: str) -> None:
    user_id = await lab.rpc.call(
        "user.create", {"email": email, "password": PASSWORD, "permission": "none"}
    )
    assert await lab.rpc.call("acl.add", {"subject": user_id, "object": object_id, "action": role})


async def test_rest_actions_check_the_callers_permission(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        vms = {vm_id: await lab.get_json(f"/vms/{vm_id}") for vm_id in await lab.vm_ids()}
        vm_id = min(i for i, vm in vms.items() if vm["power_state"] == "Running")
        await user_with_role(lab, "operator@x", vm_id, "operator")
        await user_with_role(lab, "viewer@x", vm_id, "viewer")
        stop = f"/vms/{vm_id}/actions/hard_shutdown?sync=true"
        for path in (stop, f"/vms/{vm_id}/actions/hard_shutdown"):
            response = await lab.request("POST", path, token="", headers=basic("viewer@x"))
            assert response.status == 403, path
            body = await response.json()
            assert body["error"] == "not enough permissions"
            assert body["data"] == {"permission": "operate", "object": {"id": vm_id, "type": "VM"}}
        assert (await lab.get_json(f"/vms/{vm_id}"))["power_state"] == "Running"
        response = await lab.request("POST", stop, token="", headers=basic("operator@x"))
        assert response.status == 204, await response.text()
        assert (await lab.get_json(f"/vms/{vm_id}"))["power_state"] == "Halted"
        # Deleting is administrating: refused to an operator, its VM still there.
        response = await lab.request(
            "DELETE", f"/vms/{vm_id}", token="", headers=basic("operator@x")
        )
        assert response.status == 403
        assert (await lab.request("GET", f"/vms/{vm_id}")).status == 200
