"""vm.insertCd, vm.ejectCd, vm.createInterface, vm.attachDisk and vm.setBootOrder through xod's
JSON-RPC API against the simulator: the effect is in the cache when the call returns; XAPI errors
arrive as XO codes; invalid params are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.test_commands_support import Env, commands_env
from tests.api.test_vm_create_support import (
    GiB,
    act,
    by_label,
    cache_shows,
    cached,
    error_of,
    make_iso,
    vm_devices,
    xenapi,
)


def _cd(env: Env, vm_id: str) -> dict[str, Any]:
    vbds, _ = vm_devices(env, cached(env, vm_id))
    drive = next((vbd for vbd in vbds if vbd["is_cd_drive"]), None)
    assert drive is not None, "the VM has no CD drive"
    return drive


def _has_cd(env: Env, vm_id: str) -> bool:
    vbds, _ = vm_devices(env, cached(env, vm_id))
    return any(vbd["is_cd_drive"] for vbd in vbds)


async def test_insert_and_eject_cd(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        iso = await make_iso(env, "first.iso")
        other = await make_iso(env, "second.iso")
        vm_id = (await env.vm_in_state("Halted"))["id"]
        assert not _has_cd(env, vm_id)
        # No drive yet: one is added at position 3 with the disc in it.
        assert await act(env, "vm.insertCd", {"id": vm_id, "cd_id": iso}) is True
        drive = _cd(env, vm_id)
        assert (drive["position"], drive["VDI"]) == ("3", iso)
        assert drive["read_only"] is True
        # A full drive: with force (the default) the disc is swapped; without, xapi refuses.
        await act(env, "vm.insertCd", {"id": vm_id, "cd_id": other})
        assert _cd(env, vm_id)["VDI"] == other
        error = await error_of(env, "vm.insertCd", {"id": vm_id, "cd_id": iso, "force": False})
        assert (error.code, error.error["data"]["code"]) == (21, "VBD_NOT_EMPTY")
        assert _cd(env, vm_id)["VDI"] == other
        assert await act(env, "vm.ejectCd", {"id": vm_id}) is True
        assert _cd(env, vm_id)["VDI"] is None
        # Ejecting an empty drive: xapi's VBD_IS_EMPTY; a VM without a drive: nothing to do.
        error = await error_of(env, "vm.ejectCd", {"id": vm_id})
        assert (error.code, error.error["data"]["code"]) == (21, "VBD_IS_EMPTY")
        other_vm = (await env.vm_in_state("Running"))["id"]
        assert await act(env, "vm.ejectCd", {"id": other_vm}) is True
        # A running VM's new drive is plugged at once.
        assert await act(env, "vm.insertCd", {"id": other_vm, "cd_id": iso}) is True
        assert _cd(env, other_vm)["attached"] is True and _cd(env, other_vm)["VDI"] == iso
        # Invalid params and unknown objects.
        assert (await error_of(env, "vm.insertCd", {"id": vm_id})).code == 10
        assert (await error_of(env, "vm.insertCd", {"id": vm_id, "cd_id": vm_id})).code == 1
        assert (await error_of(env, "vm.ejectCd", {"vm": 1})).code == 10


async def test_create_interface(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        eth1 = by_label(env, "network", "Pool-wide network associated with eth1")
        halted = (await env.vm_in_state("Halted"))["id"]
        vif_id = await act(
            env,
            "vm.createInterface",
            {"vm": halted, "network": eth1["id"], "mac": "02:11:22:33:44:55"},
        )
        vif = cached(env, vif_id)
        assert (vif["$VM"], vif["$network"], vif["MAC"]) == (
            halted,
            eth1["id"],
            "02:11:22:33:44:55",
        )
        assert vif["device"] == "1" and vif["attached"] is False
        assert vif_id in cached(env, halted)["VIFs"]
        # A running VM: plugged at once, on the position asked for.
        running = (await env.vm_in_state("Running"))["id"]
        vif_id = await act(
            env, "vm.createInterface", {"vm": running, "network": eth1["id"], "position": 4}
        )
        vif = cached(env, vif_id)
        assert (vif["device"], vif["attached"]) == ("4", True) and len(vif["MAC"]) == 17
        # A position xapi refuses (taken): its error, as operationFailed with the code.
        error = await error_of(
            env, "vm.createInterface", {"vm": running, "network": eth1["id"], "position": 0}
        )
        assert (error.code, error.error["data"]["code"]) == (21, "DEVICE_ALREADY_EXISTS")
        assert (await error_of(env, "vm.createInterface", {"vm": running})).code == 10
        error = await error_of(env, "vm.createInterface", {"vm": running, "network": "nope"})
        assert error.code == 1


async def test_attach_disk(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        sr = by_label(env, "SR", "NFS storage")

        def new_disk(api: Any) -> str:
            vdi = api.VDI.create(
                {
                    "name_label": "spare",
                    "SR": api.SR.get_by_uuid(sr["uuid"]),
                    "virtual_size": str(GiB),
                    "type": "user",
                    "sharable": False,
                    "read_only": False,
                    "other_config": {},
                }
            )
            return str(api.VDI.get_uuid(vdi))

        spare = await xenapi(env, new_disk)
        running = (await env.vm_in_state("Running"))["id"]
        await cache_shows(env, "the new disk", lambda: env.app.objects.get(spare) is not None)
        assert (
            await act(
                env, "vm.attachDisk", {"vm": running, "vdi": spare, "position": "5", "mode": "RO"}
            )
            is True
        )
        vbds, _ = vm_devices(env, cached(env, running))
        (vbd,) = [v for v in vbds if v["VDI"] == spare]
        assert (vbd["position"], vbd["read_only"], vbd["attached"]) == ("5", True, True)
        # xapi's refusal: a slot already used.
        error = await error_of(env, "vm.attachDisk", {"vm": running, "vdi": spare, "position": "5"})
        assert (error.code, error.error["data"]["code"]) == (21, "DEVICE_ALREADY_EXISTS")
        assert len(cached(env, running)["$VBDs"]) == len(vbds)  # nothing left behind
        for params in (
            {"vm": running},
            {"vm": running, "vdi": spare, "mode": "rw"},
            {"vm": running, "vdi": spare, "position": 5},
        ):
            assert (await error_of(env, "vm.attachDisk", params)).code == 10, params
        assert (await error_of(env, "vm.attachDisk", {"vm": running, "vdi": "nope"})).code == 1


async def test_set_boot_order(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        assert await act(env, "vm.setBootOrder", {"vm": vm_id, "order": "ndc"}) is True
        assert cached(env, vm_id)["boot"]["order"] == "ndc"
        await act(env, "vm.set", {"id": vm_id, "virtualizationMode": "pv"})
        error = await error_of(env, "vm.setBootOrder", {"vm": vm_id, "order": "cdn"})
        assert (error.code, error.error["message"]) == (
            10,
            "You can only set the boot order on a HVM guest",
        )
        assert (await error_of(env, "vm.setBootOrder", {"vm": vm_id})).code == 10
        assert (await error_of(env, "vm.setBootOrder", {"vm": "nope", "order": "c"})).code == 1
