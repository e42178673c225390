"""Xen Orchestra's Terraform provider's cloud-config resource and data source (xenorchestra-go-sdk
`client/cloud_config.go`), replayed call for call against xod: create, read, update (the
resource's fields force a new one: delete + create), delete, and a VM built with the template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.harness import Client
from tests.api.test_commands_support import commands_env
from tests.api.test_vm_create_support import template_with_disk

TEMPLATE = "#cloud-config\nhostname: {name}\npackages:\n  - nginx\n"


async def get_all(client: Client) -> list[dict[str, Any]]:
    """GetAllCloudConfigs: decoded as [{id, name, template}], every value a string."""
    configs = await client.call("cloudConfig.getAll", {})
    assert isinstance(configs, list)
    for config in configs:
        assert {type(config[k]) for k in ("id", "name", "template")} == {str}
    return configs


async def create(client: Client, name: str, template: str) -> dict[str, Any]:
    """CreateCloudConfig: the answer is ignored; the new one is found by name and template."""
    await client.call("cloudConfig.create", {"name": name, "template": template})
    found = [c for c in await get_all(client) if c["name"] == name and c["template"] == template]
    assert len(found) == 1
    return found[0]


async def get(client: Client, config_id: str) -> dict[str, Any] | None:
    """GetCloudConfig (resource read): None tells the provider the resource is gone."""
    return next((c for c in await get_all(client) if c["id"] == config_id), None)


async def test_terraform_cloud_config_resource_lifecycle(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        client = env.client
        config = await create(client, "web", TEMPLATE)
        assert await get(client, config["id"]) == config
        # The data source: by name.
        assert [c for c in await get_all(client) if c["name"] == "web"] == [config]

        # Update: name and template are ForceNew — delete, then create.
        assert await client.call("cloudConfig.delete", {"id": config["id"]}) is True
        replaced = await create(client, "web-v2", TEMPLATE.replace("nginx", "caddy"))
        assert await get(client, config["id"]) is None and replaced["id"] != config["id"]

        # A VM resource using it: its template text becomes the VM's cloud-init drive.
        template = await template_with_disk(env)
        vm_id = await client.call(
            "vm.create",
            {
                "template": template["id"],
                "name_label": "with-cloud-config",
                "clone": True,
                "bootAfterCreate": False,
                "VIFs": [],
                "VDIs": [],
                "cloudConfig": replaced["template"],
            },
        )
        vm = (await client.call("xo.getAllObjects", {"filter": {"type": "VM"}}))[vm_id]
        vbds = await client.call("xo.getAllObjects", {"filter": {"type": "VBD"}})
        vdis = await client.call("xo.getAllObjects", {"filter": {"type": "VDI"}})
        labels = sorted(vdis[vbds[v]["VDI"]]["name_label"] for v in vm["$VBDs"])
        assert "XO CloudConfigDrive" in labels

        # Delete; a second delete (already gone) is no error for the provider.
        assert await client.call("cloudConfig.delete", {"id": replaced["id"]}) is True
        assert await client.call("cloudConfig.delete", {"id": replaced["id"]}) is True
        assert await get_all(client) == []
