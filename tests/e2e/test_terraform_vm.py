"""Xen Orchestra's Terraform provider (terraform-provider-xenorchestra with xenorchestra-go-sdk),
replayed call for call against xod and the simulator: its VM resource with cloud-init, two disks
and two networks is created, read, updated and deleted, and every field the provider decodes is
present with a type Go's `encoding/json` accepts (a mismatch fails the provider's unmarshal).

The SDK finds everything with `xo.getAllObjects {filter: {type}}` and filters on its side; the
call sequences and params below are the SDK's (`client/vm.go` CreateVm/UpdateVm/DeleteVm,
`client/state.go` polls)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.api.config_drive_support import drive_image, mtools
from tests.api.harness import Client
from tests.api.test_commands_support import commands_env
from tests.api.test_vm_create_support import GiB, template_with_disk

CLOUD_CONFIG = "#cloud-config\nhostname: tf-vm\nusers:\n  - name: ops\n"
# The provider's `cloud_network_config`, sent as `networkConfig`.
NETWORK_CONFIG = "network:\n  version: 1\n  config:\n    - type: physical\n      name: eth0\n"

# Go types of the fields the SDK decodes (client/vm.go, vdi.go, vif.go): "str", "int", "bool",
# "[str]", "[int]", "{str:str}", "{str:any}", "any"; null is accepted for every one (Go leaves
# the zero value), anything else fails the unmarshal.
VM_FIELDS = {
    "id": "str",
    "type": "str",
    "name_label": "str",
    "name_description": "str",
    "power_state": "str",
    "addresses": "{str:str}",
    "blockedOperations": "{str:str}",
    "boot": "{str:str}",
    "affinityHost": "str",
    "CPUs": "{str:int}",
    "memory": "memory",
    "VIFs": "[str]",
    "$VBDs": "[str]",
    "virtualizationMode": "str",
    "$poolId": "str",
    "$container": "str",
    "auto_poweron": "bool",
    "high_availability": "str",
    "secureBoot": "bool",
    "expNestedHvm": "bool",
    "tags": "[str]",
    "vga": "str",
    "videoram": "videoram",
    "startDelay": "int",
    "xenStoreData": "{str:any}",
    "managementAgentDetected": "bool",
    "pvDriversDetected": "bool",
    "coresPerSocket": "int",
}
VBD_FIELDS = {
    "id": "str",
    "attached": "bool",
    "device": "str",
    "read_only": "bool",
    "VM": "str",
    "VDI": "str",
    "is_cd_drive": "bool",
    "position": "str",
    "bootable": "bool",
    "$poolId": "str",
}
VDI_FIELDS = {
    "id": "str",
    "$SR": "str",
    "name_label": "str",
    "name_description": "str",
    "size": "int",
    "$VBDs": "[str]",
    "$poolId": "str",
    "tags": "[str]",
}
VIF_FIELDS = {
    "id": "str",
    "attached": "bool",
    "$network": "str",
    "device": "str",
    "MAC": "str",
    "$VM": "str",
}


def _is(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind.startswith("["):
        return isinstance(value, list) and all(_is(kind[1:-1], v) for v in value)
    if kind == "{str:str}":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    if kind == "{str:int}":
        return isinstance(value, dict) and all(_is("int", v) for v in value.values())
    if kind == "{str:any}":
        return isinstance(value, dict)
    if kind == "videoram":  # the SDK's own decoder takes a number or a numeric string
        return _is("int", value) or (isinstance(value, str) and value.isdigit())
    if kind == "memory":
        return (
            isinstance(value, dict)
            and _is("[int]", value.get("dynamic"))
            and _is("[int]", value.get("static"))
            and _is("int", value.get("size"))
        )
    raise AssertionError(kind)


def assert_decodes(obj: dict[str, Any], fields: dict[str, str], required: set[str]) -> None:
    """What Go's unmarshal of the SDK struct needs: the right types; `required`: present."""
    for name, kind in fields.items():
        assert _is(kind, obj.get(name)), (obj.get("type"), name, obj.get(name))
    missing = {name for name in required if obj.get(name) is None}
    assert not missing, (obj.get("type"), missing)


async def of_type(client: Client, object_type: str) -> dict[str, dict[str, Any]]:
    """The SDK's only lookup: every object of a type (it filters on its side)."""
    objects: dict[str, dict[str, Any]] = await client.call(
        "xo.getAllObjects", {"filter": {"type": object_type}}
    )
    return objects


async def get_vm(client: Client, vm_id: str) -> dict[str, Any]:
    """client.GetVm: exactly one VM with this id."""
    matches = [vm for vm in (await of_type(client, "VM")).values() if vm["id"] == vm_id]
    assert len(matches) == 1, f"expected to find a single VM {vm_id}, found {len(matches)}"
    return matches[0]


async def wait_power_state(client: Client, vm_id: str, target: str, pending: str) -> None:
    """client/state.go: refresh now, then every 100 ms doubling; an unexpected state fails."""
    delay, deadline = 0.1, time.monotonic() + 120
    while True:
        state = (await get_vm(client, vm_id))["power_state"]
        if state == target:
            return
        assert state == pending, f"unexpected state {state}"
        assert time.monotonic() < deadline, f"{vm_id} not {target} within 2 min"
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10)


Objects = list[dict[str, Any]]


async def read_vm(client: Client, vm_id: str) -> tuple[dict[str, Any], Objects, Objects, Objects]:
    """resourceVmRead: the VM, its VIFs, its disks (VBDs and their VDIs), each decoded."""
    vm = await get_vm(client, vm_id)
    vifs = [v for v in (await of_type(client, "VIF")).values() if v["$VM"] == vm_id]
    vbds = [v for v in (await of_type(client, "VBD")).values() if v["VM"] == vm_id]
    vdis_by_id = await of_type(client, "VDI")
    vdis = [vdis_by_id[vbd["VDI"]] for vbd in vbds if not vbd["is_cd_drive"] and vbd["VDI"]]
    assert_decodes(
        vm,
        VM_FIELDS,
        {"id", "type", "name_label", "power_state", "CPUs", "memory", "VIFs", "$VBDs", "$poolId"},
    )
    for vif in vifs:
        assert_decodes(vif, VIF_FIELDS, {"id", "$network", "device", "MAC", "$VM"})
    for vbd in vbds:
        assert_decodes(vbd, VBD_FIELDS, {"id", "VM", "position", "$poolId"})
    for vdi in vdis:
        assert_decodes(vdi, VDI_FIELDS, {"id", "$SR", "name_label", "size", "$poolId"})
    return vm, sorted(vifs, key=lambda v: v["device"]), vbds, vdis


async def test_terraform_vm_resource_lifecycle(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        client = env.client
        template = await template_with_disk(env, 10 * GiB)

        # Data sources: the pool, the template, two networks, the SR (by name, client-side).
        (pool,) = (await of_type(client, "pool")).values()
        templates = await of_type(client, "VM-template")
        tmpl = next(t for t in templates.values() if t["name_label"] == template["name_label"])
        assert tmpl["$poolId"] == pool["id"] and tmpl["$VBDs"]  # a "disk template"
        networks = {n["name_label"]: n for n in (await of_type(client, "network")).values()}
        eth0 = networks["Pool-wide network associated with eth0"]
        eth1 = networks["Pool-wide network associated with eth1"]
        sr = next(
            s for s in (await of_type(client, "SR")).values() if s["name_label"] == "NFS storage"
        )

        # CreateVm: the template's VBDs, then vm.create with exactly the SDK's params.
        template_vbds = {
            v["position"]: v
            for v in (await of_type(client, "VBD")).values()
            if v["VM"] == tmpl["id"]
        }
        assert list(template_vbds) == ["0"]
        disk = {"$SR": sr["id"], "SR": sr["id"], "name_description": "", "type": "user"}
        params = {
            "bootAfterCreate": False,
            "clone": True,  # a disk template with clone_type "fast"
            "name_label": "tf-vm",
            "name_description": "managed by terraform",
            "template": tmpl["id"],
            "coreOs": False,
            "cpuCap": None,
            "cpuWeight": None,
            "CPUs": 4,
            "secureBoot": False,
            "expNestedHvm": False,
            "VDIs": [
                {**disk, "name_label": "tf-vm-root", "size": 10 * GiB, "userdevice": "0"},
                {**disk, "name_label": "tf-vm-data", "size": 4 * GiB},
            ],
            "VIFs": [{"network": eth0["id"]}, {"network": eth1["id"], "mac": "02:aa:bb:cc:dd:01"}],
            "tags": ["terraform", "web"],
            "auto_poweron": False,
            "high_availability": "",
            "memoryStaticMax": 4 * GiB,
            "memoryMax": 4 * GiB,
            "hvmBootFirmware": "bios",
            "cloudConfig": CLOUD_CONFIG,
            "networkConfig": NETWORK_CONFIG,
        }
        vm_id = await client.call("vm.create", params)
        assert isinstance(vm_id, str)
        # What the VM's cloud-init will read from its drive.
        image = str(await drive_image(env, vm_id, tmp_path))
        drive = await asyncio.to_thread(
            lambda: [
                mtools("mtype", "-i", image, f"::{f}") for f in ("user-data", "network-config")
            ]
        )
        assert drive == [CLOUD_CONFIG, NETWORK_CONFIG]
        # GetVm right away: the VM must already be there (no waiting in the SDK).
        created = await get_vm(client, vm_id)
        static_min = created["memory"]["static"][0]
        assert await client.call(
            "vm.set", {"id": vm_id, "xenStoreData": {}, "memoryMin": max(2 * GiB, static_min)}
        )
        assert await client.call("vm.start", {"id": vm_id}) is True
        await wait_power_state(client, vm_id, "Running", "Halted")

        # resourceVmRead: every field the provider reads.
        vm, vifs, vbds, vdis = await read_vm(client, vm_id)
        assert (vm["type"], vm["name_label"], vm["name_description"]) == (
            "VM",
            "tf-vm",
            "managed by terraform",
        )
        assert vm["CPUs"] == {"max": 4, "number": 4}
        assert (
            vm["memory"]["dynamic"] == [2 * GiB, 4 * GiB] and vm["memory"]["static"][1] == 4 * GiB
        )
        assert vm["memory"]["size"] > 0 and isinstance(vm["addresses"], dict)
        assert vm["managementAgentDetected"] is True
        assert sorted(vm["tags"]) == ["terraform", "web"] and vm["boot"]["firmware"] == "bios"
        assert vm["$poolId"] == pool["id"] and vm["creation"]["template"] == tmpl["uuid"]
        assert vm["high_availability"] == "" and vm["auto_poweron"] is False
        assert vm["pvDriversDetected"] is True  # the SDK waits for it before a stop
        assert [(v["device"], v["$network"], v["attached"]) for v in vifs] == [
            ("0", eth0["id"], True),
            ("1", eth1["id"], True),
        ]
        assert vifs[1]["MAC"] == "02:aa:bb:cc:dd:01"
        by_label = {vdi["name_label"]: vdi for vdi in vdis}
        assert {k: v["size"] for k, v in by_label.items()} == {
            "tf-vm-root": 10 * GiB,
            "tf-vm-data": 4 * GiB,
            "XO CloudConfigDrive": 10 * 2**20,
        }
        positions = sorted(int(v["position"]) for v in vbds)
        assert positions == [0, 1, 2]

        # Update: more vCPUs than the max and a new memory max → the provider halts the VM
        # (after pvDriversDetected), sends UpdateVm's params, restarts it.
        assert (await get_vm(client, vm_id))["pvDriversDetected"] is True
        assert await client.call("vm.stop", {"id": vm_id}) is True
        await wait_power_state(client, vm_id, "Halted", "Running")
        update = {
            "id": vm_id,
            "name_label": "tf-vm-renamed",
            "name_description": "",
            "auto_poweron": True,
            "high_availability": "best-effort",
            "CPUs": 6,
            "expNestedHvm": True,
            "startDelay": 10,
            "secureBoot": False,
            "memoryMin": 2 * GiB,
            "memoryMax": 6 * GiB,
            "memoryStaticMax": 6 * GiB,
            "videoram": 8,
            "xenStoreData": {"role": "web"},
            "vga": "std",
            "hvmBootFirmware": "bios",
            "blockedOperations": {},
            "affinityHost": None,
        }
        assert await client.call("vm.set", update) is True
        assert await client.call("vm.start", {"id": vm_id}) is True
        await wait_power_state(client, vm_id, "Running", "Halted")
        # The provider's own raw call: blocked operations as {op: "true"} / {op: null}.
        await client.call("vm.set", {"id": vm_id, "blockedOperations": {"destroy": "true"}})
        await client.call("vm.set", {"id": vm_id, "blockedOperations": {"destroy": None}})
        vm, *_ = await read_vm(client, vm_id)
        assert (vm["name_label"], vm["name_description"]) == ("tf-vm-renamed", "")
        assert vm["CPUs"] == {"max": 6, "number": 6}
        assert (
            vm["memory"]["dynamic"] == [2 * GiB, 6 * GiB] and vm["memory"]["static"][1] == 6 * GiB
        )
        assert (vm["auto_poweron"], vm["high_availability"]) == (True, "best-effort")
        assert (vm["expNestedHvm"], vm["startDelay"], vm["vga"]) == (True, 10, "std")
        assert int(vm["videoram"]) == 8 and vm["blockedOperations"] == {}
        assert vm["xenStoreData"] == {"vm-data/role": "web"}

        # Delete: vm.delete on the running VM; it is gone from the next read.
        assert await client.call("vm.delete", {"id": vm_id}) is True
        assert [v for v in (await of_type(client, "VM")).values() if v["id"] == vm_id] == []
        assert env.sim_count("VM", name_label="tf-vm-renamed") == 0
