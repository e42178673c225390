"""One object (GET, PATCH, tags, DELETE) and actions with their tasks — each run as the
JSON-RPC method, so both APIs see the same effects."""

from __future__ import annotations

from pathlib import Path

from tests.rest.helpers import rest_lab


async def _vm(lab, state: str) -> str:
    vms = await lab.rpc.call("xo.getAllObjects", {"filter": {"type": "VM"}})
    return next(i for i, v in vms.items() if v["power_state"] == state)


async def test_get_patch_tags_delete(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        vm_id = await _vm(lab, "Running")
        for path in ("/vms/no-such-id", f"/hosts/{vm_id}"):
            response = await lab.request("GET", path)
            assert response.status == 404
            assert (await response.json())["data"]["id"] == path.rsplit("/", 1)[1]

        response = await lab.request(
            "PATCH", f"/vms/{vm_id}", json={"name_label": "web-1", "nameDescription": "front"}
        )
        assert response.status == 204
        vm = await lab.rpc.call("xo.getAllObjects", {"filter": {"id": vm_id}})
        assert (vm[vm_id]["name_label"], vm[vm_id]["name_description"]) == ("web-1", "front")

        assert (await lab.request("PUT", f"/vms/{vm_id}/tags/My%20tag")).status == 204
        assert (await lab.request("PUT", f"/vms/{vm_id}/tags/other")).status == 204
        assert sorted((await lab.get_json(f"/vms/{vm_id}"))["tags"]) == ["My tag", "other"]
        assert (await lab.request("DELETE", f"/vms/{vm_id}/tags/other")).status == 204
        assert (await lab.get_json(f"/vms/{vm_id}"))["tags"] == ["My tag"]
        response = await lab.request("PATCH", f"/vms/{vm_id}", json={"tags": ["a", "b"]})
        assert response.status == 204
        assert sorted((await lab.get_json(f"/vms/{vm_id}"))["tags"]) == ["a", "b"]

        response = await lab.request("PATCH", f"/vms/{vm_id}", json={"name_label": 3})
        assert response.status == 422
        assert (await response.json())["data"]["errors"][0]["instancePath"] == "/name_label"
        response = await lab.request("PATCH", f"/vms/{vm_id}", json={"memory_max": 1})
        assert response.status == 422
        response = await lab.request("PATCH", f"/vms/{vm_id}", data=b"{not json")
        assert response.status == 422
        host_id = (await lab.get_json("/hosts"))[0].rsplit("/", 1)[1]
        response = await lab.request("PATCH", f"/hosts/{host_id}", json={"name_label": "h"})
        assert response.status == 405
        vbd = (await lab.get_json("/vbds"))[0]
        response = await lab.request("PUT", f"{vbd[len('/rest/v0') :]}/tags/x")
        assert response.status == 404  # VBDs have no tags

        response = await lab.request(
            "POST",
            f"/vms/{vm_id}/actions/snapshot?sync=true",
            json={"name_label": "before upgrade"},
        )
        assert response.status == 201
        snapshot_id = (await response.json())["id"]
        assert response.headers["Location"] == f"/rest/v0/vm-snapshots/{snapshot_id}"
        snapshot = await lab.get_json(f"/vm-snapshots/{snapshot_id}")
        assert snapshot["name_label"] == "before upgrade"
        assert (await lab.request("DELETE", f"/vm-snapshots/{snapshot_id}")).status == 204
        assert (await lab.request("GET", f"/vm-snapshots/{snapshot_id}")).status == 404
        response = await lab.request("DELETE", f"/hosts/{host_id}")
        assert response.status == 405 and response.headers["Allow"] == "GET"


async def test_actions_and_tasks(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        vm_id = await _vm(lab, "Running")
        hrefs = await lab.get_json(f"/vms/{vm_id}/actions")
        assert f"/rest/v0/vms/{vm_id}/actions/clean_shutdown" in hrefs
        described = await lab.get_json(f"/vms/{vm_id}/actions/snapshot")
        assert described["params"]["properties"]["name_label"]["type"] == "string"

        response = await lab.request("POST", f"/vms/{vm_id}/actions/hard_shutdown")
        assert response.status == 202
        task_id = (await response.json())["taskId"]
        assert response.headers["Location"] == f"/rest/v0/tasks/{task_id}"
        task = await lab.get_json(f"/tasks/{task_id}?wait=true")
        assert task["status"] == "success" and task["end"] >= task["start"]
        assert task["properties"]["name"] == "REST API: hard_shutdown VM"
        assert task["properties"]["objectId"] == vm_id
        assert (await lab.get_json(f"/vms/{vm_id}"))["power_state"] == "Halted"
        assert (await lab.get_json(f"/tasks/{task_id}?wait=result"))["status"] == "success"
        assert task_id in [h.rsplit("/", 1)[1] for h in await lab.get_json("/tasks")]

        # A failure: its task says why (the pool refused).
        response = await lab.request("POST", f"/vms/{vm_id}/actions/pause")
        failed_id = (await response.json())["taskId"]
        failed = await lab.get_json(f"/tasks/{failed_id}?wait=true")
        assert failed["status"] == "failure"
        assert failed["result"]["error"] == "VM state is halted but should be running"
        # The same failure in sync mode: XO's error body, 409 (a state the client can change).
        response = await lab.request("POST", f"/vms/{vm_id}/actions/pause?sync=true")
        assert response.status == 409
        body = await response.json()
        assert body["info"] == "This is a XenServer/XCP-ng error, not an XO error"
        assert body["error"] == "VM state is halted but should be running"

        response = await lab.request("POST", f"/vms/{vm_id}/actions/start?sync=true")
        assert response.status == 204
        assert (await lab.get_json(f"/vms/{vm_id}"))["power_state"] == "Running"

        # JSON-RPC's task.wait knows a REST action's task: one id for both APIs.
        response = await lab.request("POST", f"/vms/{vm_id}/actions/clean_reboot")
        assert response.status == 202
        await lab.rpc.call("task.wait", {"id": (await response.json())["taskId"]})

        for path, status in (
            (f"/vms/{vm_id}/actions/fly", 404),
            ("/vms/no-such-vm/actions/start", 404),
            (f"/vms/{vm_id}/actions/start?sync=maybe", 422),
        ):
            response = await lab.request("POST", path)
            assert response.status == status, path
        response = await lab.request("POST", f"/vms/{vm_id}/actions/start", json={"hostId": 1})
        assert response.status == 422
        response = await lab.request("POST", f"/vms/{vm_id}/actions/start", json=[1])
        assert response.status == 422
        assert (await lab.request("GET", "/tasks/no-such-task")).status == 404
        assert await lab.get_json("/pools")  # still serving


async def test_clone_template_and_migrate(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        template = (await lab.get_json("/vm-templates?fields=name_label"))[0]
        response = await lab.request(
            "POST",
            f"{template['href'][len('/rest/v0') :]}/actions/clone?sync=true",
            json={"name_label": "from template"},
        )
        assert response.status == 201
        clone_id = (await response.json())["id"]
        assert (await lab.get_json(f"/vm-templates/{clone_id}"))["name_label"] == "from template"
        vm_id = await _vm(lab, "Running")
        vm = await lab.get_json(f"/vms/{vm_id}")
        hosts = await lab.get_json("/hosts")
        target = next(h.rsplit("/", 1)[1] for h in hosts if not h.endswith(vm["$container"]))
        response = await lab.request(
            "POST", f"/vms/{vm_id}/actions/migrate?sync=true", json={"hostId": target}
        )
        assert response.status == 204, await response.text()
        assert (await lab.get_json(f"/vms/{vm_id}"))["$container"] == target
