"""A VM's devices: its CD drive (vm.insertCd, vm.ejectCd), new interfaces and disks
(vm.createInterface, vm.attachDisk) and its boot order (vm.setBootOrder), as xo-server does them."""

from __future__ import annotations

import contextlib
from typing import Any

from xod.api import errors
from xod.api.commands import Command
from xod.api.methods import self_service
from xod.api.methods.vm_create import CD_POSITION
from xod.xapi.errors import XapiError

VM_TYPES = ("VM",)


def _cd_drive(command: Command, vm: dict[str, Any]) -> dict[str, Any] | None:
    store = command.store
    for vbd_id in vm.get("$VBDs") or ():
        vbd = store.get(vbd_id)
        if vbd is not None and vbd.get("is_cd_drive"):
            return vbd
    return None


async def _first_allowed(command: Command, kind: str, vm_ref: str, avoid: str = "") -> str:
    allowed = await command.call(f"VM.get_allowed_{kind}_devices", vm_ref)
    for slot in allowed:
        if slot != avoid:
            return str(slot)
    raise errors.unknown_error(f"no free {kind} slot on the VM")


async def _plug_if_running(command: Command, vm: dict[str, Any], cls: str, ref: str) -> None:
    if vm.get("power_state") == "Running":
        await command.run(f"{cls}.plug", ref)


async def insert_cd(command: Command, params: dict[str, Any]) -> None:
    vm = command.resolve(params["id"], VM_TYPES)
    vdi_ref = command.ref_of(params["cd_id"], ("VDI", "VDI-snapshot"))
    drive = _cd_drive(command, vm)
    if drive is None:
        slots = await command.call("VM.get_allowed_VBD_devices", vm["_xapiRef"])
        position = (
            CD_POSITION
            if CD_POSITION in slots
            else await _first_allowed(command, "VBD", vm["_xapiRef"])
        )
        vbd_ref = await command.call(
            "VBD.create",
            {
                "VM": vm["_xapiRef"],
                "VDI": vdi_ref,
                "userdevice": position,
                "bootable": False,
                "mode": "RO",
                "type": "CD",
                "empty": False,
                "other_config": {},
                "qos_algorithm_type": "",
                "qos_algorithm_params": {},
            },
        )
        await _plug_if_running(command, vm, "VBD", vbd_ref)
        return
    drive_ref = drive["_xapiRef"]
    try:
        await command.run("VBD.insert", drive_ref, vdi_ref)
    except XapiError as error:
        if error.code != "VBD_NOT_EMPTY" or not params.get("force", True):
            raise
        with contextlib.suppress(XapiError):
            await command.run("VBD.eject", drive_ref)
        await command.run("VBD.insert", drive_ref, vdi_ref)
    if drive.get("bootable"):
        await command.call("VBD.set_bootable", drive_ref, False)


async def eject_cd(command: Command, params: dict[str, Any]) -> None:
    vm = command.resolve(params["id"], VM_TYPES)
    drive = _cd_drive(command, vm)
    if drive is not None:
        await command.run("VBD.eject", drive["_xapiRef"])


async def create_interface(command: Command, params: dict[str, Any]) -> Any:
    vm = command.resolve(params["vm"], VM_TYPES)
    network = command.resolve(params["network"], "network")
    # As xo-server: a VM in a set takes networks its set offers; any other, networks the
    # caller can see.
    services = command.commands.services
    resource_set = self_service.set_of_vm(services, vm)
    if resource_set is not None:
        set_id = resource_set["id"]
        self_service.check_constraints(services, set_id, command.user, [network["id"]])
    else:
        command.check(network["id"], "view")
    position = params.get("position")
    device = (
        str(position)
        if position is not None
        else await _first_allowed(command, "VIF", vm["_xapiRef"])
    )
    vif_ref = await command.call(
        "VIF.create",
        {
            "device": device,
            "network": network["_xapiRef"],
            "VM": vm["_xapiRef"],
            "MAC": params.get("mac") or "",
            "MTU": network.get("MTU", 1500),
            "ipv4_allowed": list(params.get("allowedIpv4Addresses") or ()),
            "ipv6_allowed": list(params.get("allowedIpv6Addresses") or ()),
            "other_config": {},
            "qos_algorithm_type": "",
            "qos_algorithm_params": {},
        },
    )
    await _plug_if_running(command, vm, "VIF", vif_ref)
    command.wait_for_cache = True  # the new VIF's id is read from the cache
    await command.settle()
    return command.id_of(vif_ref)


async def attach_disk(command: Command, params: dict[str, Any]) -> None:
    vm = command.resolve(params["vm"], VM_TYPES)
    vdi = command.resolve(params["vdi"], "VDI")
    services = command.commands.services
    resource_set = self_service.set_of_vm(services, vm)
    charge: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if resource_set is not None:
        # As xo-server: a VM in a set takes disks from SRs its set offers, charged to it.
        set_id = resource_set["id"]
        self_service.check_constraints(services, set_id, command.user, [vdi["$SR"]])
        charge = self_service.charged(services, set_id, {"disk": vdi["size"]}, command.user)
    with charge:
        position = params.get("position") or await _first_allowed(command, "VBD", vm["_xapiRef"])
        vbd_ref = await command.call(
            "VBD.create",
            {
                "VM": vm["_xapiRef"],
                "VDI": vdi["_xapiRef"],
                "userdevice": position,
                "bootable": bool(params.get("bootable", False)),
                "mode": params.get("mode", "RW"),
                "type": "Disk",
                "empty": False,
                "other_config": {},
                "qos_algorithm_type": "",
                "qos_algorithm_params": {},
            },
        )
        await _plug_if_running(command, vm, "VBD", vbd_ref)  # plug errors reach the caller


async def set_boot_order(command: Command, params: dict[str, Any]) -> None:
    vm = command.resolve(params["vm"], ("VM", "VM-template"))
    if vm.get("virtualizationMode") != "hvm":
        raise errors.invalid_parameters([], "You can only set the boot order on a HVM guest")
    await command.call("VM.remove_from_HVM_boot_params", vm["_xapiRef"], "order")
    await command.call("VM.add_to_HVM_boot_params", vm["_xapiRef"], "order", params["order"])
