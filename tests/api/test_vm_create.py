"""vm.create through xod's JSON-RPC API against the simulator: the VM, its disks, interfaces and
config drive are in the cache when the call returns (read straight from the store, no waiting);
XAPI errors arrive as XO codes and roll the creation back; invalid params are refused."""

from __future__ import annotations

from pathlib import Path

from tests.api.test_commands_support import commands_env
from tests.api.test_vm_create_support import (
    GiB,
    by_label,
    cache_shows,
    cached,
    error_of,
    make_iso,
    template_with_disk,
    vm_devices,
)


async def test_create_from_a_diskless_template_with_disks_networks_and_cloud_init(
    tmp_path: Path,
) -> None:
    async with commands_env(tmp_path) as env:
        me = await env.client.call("session.getUser")
        template = min(env.app.objects.by_type("VM-template").values(), key=lambda t: t["id"])
        sr = by_label(env, "SR", "NFS storage")
        eth0 = by_label(env, "network", "Pool-wide network associated with eth0")
        eth1 = by_label(env, "network", "Pool-wide network associated with eth1")
        host = min(env.app.objects.by_type("host").values(), key=lambda h: h["name_label"])
        vm_id = await env.client.call(
            "vm.create",
            {
                "template": template["id"],
                "name_label": "web-1",
                "name_description": "made by a test",
                "CPUs": 4,
                "memoryMax": 4 * GiB,
                "coresPerSocket": 2,
                "VDIs": [
                    {"SR": sr["id"], "size": 20 * GiB, "type": "user", "name_label": "root"},
                    {"SR": sr["id"], "size": "5GiB", "type": "user", "name_label": "data"},
                ],
                "VIFs": [
                    {"network": eth0["id"]},
                    {"network": eth1["id"], "mac": "02:00:00:00:00:01"},
                ],
                "cloudConfig": "#cloud-config\nhostname: web-1\n",
                "affinityHost": host["id"],
                "tags": ["web", "prod"],
                "auto_poweron": True,
                "bootAfterCreate": False,
            },
        )
        vm = cached(env, vm_id)
        assert vm is not None and vm["type"] == "VM" and vm["power_state"] == "Halted"
        assert (vm["name_label"], vm["name_description"]) == ("web-1", "made by a test")
        assert vm["CPUs"] == {"max": 4, "number": 4}  # the template's max (2) raised first
        assert vm["memory"]["dynamic"][1] == 4 * GiB and vm["memory"]["static"][1] >= 4 * GiB
        assert vm["coresPerSocket"] == 2
        assert vm["affinityHost"] == host["id"] and vm["auto_poweron"] is True
        assert sorted(vm["tags"]) == ["prod", "web"]
        assert vm["creation"]["user"] == me["id"]
        assert vm["creation"]["template"] == template["uuid"]
        vbds, vifs = vm_devices(env, vm)
        disks = [cached(env, vbd["VDI"]) for vbd in vbds]
        assert [(vbd["position"], vbd["bootable"], vbd["is_cd_drive"]) for vbd in vbds] == [
            ("0", True, False),
            ("1", False, False),
            ("2", False, False),
        ]
        assert [(d["name_label"], d["size"], d["$SR"]) for d in disks] == [
            ("root", 20 * GiB, sr["id"]),
            ("data", 5 * GiB, sr["id"]),
            ("XO CloudConfigDrive", 10 * 2**20, sr["id"]),
        ]
        assert [(v["device"], v["$network"]) for v in vifs] == [
            ("0", eth0["id"]),
            ("1", eth1["id"]),
        ]
        assert vifs[1]["MAC"] == "02:00:00:00:00:01" and len(vifs[0]["MAC"]) == 17
        # The template is untouched, and the pool holds exactly one such VM.
        assert cached(env, template["id"])["type"] == "VM-template"
        assert env.sim_count("VM", name_label="web-1") == 1


async def test_create_from_a_disk_template_keeps_resizes_and_drops_its_disks(
    tmp_path: Path,
) -> None:
    async with commands_env(tmp_path) as env:
        template = await template_with_disk(env, 10 * GiB)
        sr = by_label(env, "SR", "NFS storage")
        # The template's recipe disk kept and renamed (position 0), one new disk.
        vm_id = await env.client.call(
            "vm.create",
            {
                "template": template["id"],
                "name_label": "from-disk-template",
                "VDIs": [
                    {"userdevice": "0", "size": 10 * GiB, "SR": sr["id"], "name_label": "system"},
                    {"size": GiB, "SR": sr["id"], "name_label": "extra"},
                ],
                "VIFs": [],
            },
        )
        vbds, vifs = vm_devices(env, cached(env, vm_id))
        disks = [cached(env, vbd["VDI"]) for vbd in vbds]
        assert [(v["position"], v["bootable"]) for v in vbds] == [("0", True), ("1", False)]
        assert [(d["name_label"], d["size"]) for d in disks] == [
            ("system", 10 * GiB),
            ("extra", GiB),
        ]
        assert vifs == []
        # destroy: the template's disk goes; existingDisks renames it (the legacy form).
        dropped = await env.client.call(
            "vm.create",
            {
                "template": template["id"],
                "name_label": "no-template-disk",
                "VDIs": [{"userdevice": "0", "size": 0, "SR": sr["id"], "destroy": True}],
            },
        )
        dropped_vm = cached(env, dropped)
        assert all(
            env.app.objects.get(cached(env, vbd)["VDI"] or "") is None
            for vbd in dropped_vm["$VBDs"]
        )
        renamed = await env.client.call(
            "vm.create",
            {
                "template": template["id"],
                "name_label": "renamed-disk",
                "existingDisks": {"0": {"name_label": "boot", "$SR": sr["id"]}},
            },
        )
        (vbd,), _ = vm_devices(env, cached(env, renamed))
        assert cached(env, vbd["VDI"])["name_label"] == "boot"
        # A smaller size than the template's disk is refused, and the new VM rolled back.
        error = await error_of(
            env,
            "vm.create",
            {
                "template": template["id"],
                "name_label": "shrunk",
                "VDIs": [{"userdevice": "0", "size": GiB, "SR": sr["id"]}],
            },
        )
        assert error.code == -32000 and "smaller VDI size" in error.error["message"]
        assert env.sim_count("VM", name_label="shrunk") == 0


async def test_create_with_an_installation(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        iso_id = await make_iso(env)
        template = min(env.app.objects.by_type("VM-template").values(), key=lambda t: t["id"])
        cd_vm = await env.client.call(
            "vm.create",
            {
                "template": template["id"],
                "name_label": "installed-from-cd",
                "clone": False,  # a full copy: what the Go SDK asks for a diskless template
                "installation": {"method": "cdrom", "repository": iso_id},
            },
        )
        vm = cached(env, cd_vm)
        assert vm["boot"]["order"] == "dcn" and vm["type"] == "VM"
        assert "VM.copy" in env.sim.pool.call_log or "Async.VM.copy" in env.sim.pool.call_log
        (cd,), _ = vm_devices(env, vm)
        assert (cd["is_cd_drive"], cd["position"], cd["VDI"], cd["bootable"]) == (
            True,
            "3",
            iso_id,
            True,
        )
        pxe_vm = await env.client.call(
            "vm.create",
            {
                "template": template["id"],
                "name_label": "installed-from-network",
                "installation": {"method": "network", "repository": "pxe"},
            },
        )
        assert cached(env, pxe_vm)["boot"]["order"] == "ncd"


async def test_boot_after_create(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        template = await template_with_disk(env)
        vm_id = await env.client.call(
            "vm.create",
            {"template": template["id"], "name_label": "booted", "bootAfterCreate": True},
        )
        # Started in the background, as xo-server does: the answer does not wait for the boot.
        await cache_shows(
            env,
            "the new VM running",
            lambda: cached(env, vm_id)["power_state"] == "Running",
        )


async def test_create_errors_roll_back(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        template = min(env.app.objects.by_type("VM-template").values(), key=lambda t: t["id"])
        vms_before = env.sim_count("VM")
        # Unknown template, network, SR: noSuchObject (the last two after the clone: rolled back).
        error = await error_of(env, "vm.create", {"template": "nope", "name_label": "x"})
        assert (error.code, error.error["data"]["id"]) == (1, "nope")
        error = await error_of(
            env,
            "vm.create",
            {"template": template["id"], "name_label": "x", "VIFs": [{"network": "nope"}]},
        )
        assert error.code == 1
        # A config drive needs a disk (xo-server's message).
        error = await error_of(
            env,
            "vm.create",
            {"template": template["id"], "name_label": "x", "cloudConfig": "#cloud-config\n"},
        )
        assert error.code == -32000
        assert error.error["message"] == "Can't create cloud init config drive for VM without disks"
        # An XAPI refusal: memory limits xapi rejects arrive as operationFailed with its code.
        error = await error_of(
            env,
            "vm.create",
            {"template": template["id"], "name_label": "x", "memoryStaticMax": 1, "memoryMax": 2},
        )
        assert (error.code, error.error["data"]["code"]) == (21, "MEMORY_CONSTRAINT_VIOLATION")
        # Every failed creation was rolled back: no VM, no disk left behind.
        assert env.sim_count("VM") == vms_before
        assert env.sim_count("VM", name_label="x") == 0
        assert not [o for o in env.app.objects.by_type("VM").values() if o["name_label"] == "x"]


async def test_create_invalid_params(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        template = min(env.app.objects.by_type("VM-template").values(), key=lambda t: t["id"])
        base = {"template": template["id"], "name_label": "x"}
        for params in (
            {"template": template["id"]},
            {**base, "VIFs": None},
            {**base, "VIFs": [{"mac": "02:00:00:00:00:01"}]},
            {**base, "VDIs": [{"SR": "sr"}]},
            {**base, "clone": "yes"},
            {**base, "resourceSet": 5},
            {**base, "vga": "vesa"},
            {**base, "memoryMax": "lots"},
        ):
            error = await error_of(env, "vm.create", params)
            assert error.code == 10, params
        assert env.sim_count("VM", name_label="x") == 0
