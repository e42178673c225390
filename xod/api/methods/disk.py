"""disk.create: a new VDI on an SR, attached to a VM when one is given, as xo-server does it;
and the sizes XO accepts (`10737418240`, `"10GiB"`, `"10 G"`)."""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any

from xod.api import errors
from xod.api.commands import Command, action
from xod.api.methods import self_service
from xod.api.registry import Registry
from xod.xapi.errors import XapiError

log = logging.getLogger("xod.api.methods.disk")

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKMGTP]i?)?B?\s*$")
_SI = {"k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}
# The CD drive's usual position, left free for it when a disk's position is chosen.
CD_POSITION = 3
_LIVE = ("Running", "Paused")


def parse_size(value: int | str, field: str = "size") -> int:
    """Bytes from an int or a string with an SI (`G` = 10^9) or binary (`Gi` = 2^30) prefix."""
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_RE.match(value)
        if match is None:
            raise errors.invalid_parameter(f"/{field}", "format", f"invalid size: {value}")
        number, prefix = match.groups()
        factor = 1
        if prefix:
            factor = (
                1024 ** (" KMGTP".index(prefix[0].upper())) if prefix.endswith("i") else _SI[prefix]
            )
        size = int(float(number) * factor)
    if size < 0:
        raise errors.invalid_parameter(f"/{field}", "minimum", f"invalid size: {value}")
    return size


def free_position(command: Command, vm: dict[str, Any]) -> str:
    """The first free userdevice of a VM, leaving the CD drive's place free."""
    used = {(command.store.get(vbd) or {}).get("position") for vbd in vm.get("$VBDs") or ()}
    position = next(p for p in range(len(used) + 2) if p != CD_POSITION and str(p) not in used)
    return str(position)


async def attach(
    command: Command, vm: dict[str, Any], vdi_ref: str, *, position: str, mode: str, bootable: bool
) -> str:
    """A VBD of `vm` on the VDI, plugged when the VM runs (a refused plug is only logged, as
    xo-server does: the disk is there and the guest gets it at its next boot)."""
    vbd_ref: str = await command.run(
        "VBD.create",
        {
            "VM": vm["_xapiRef"],
            "VDI": vdi_ref,
            "userdevice": position,
            "bootable": bootable,
            "mode": mode,
            "type": "Disk",
            "empty": False,
            "other_config": {},
            "qos_algorithm_type": "",
            "qos_algorithm_params": {},
        },
    )
    if vm.get("power_state") in _LIVE:
        try:
            await command.run("VBD.plug", vbd_ref)
        except XapiError as error:
            log.warning("disk.create: the new disk of %s is not plugged: %s", vm["id"], error)
    return vbd_ref


def _charged(
    command: Command, vm: dict[str, Any] | None, sr: dict[str, Any], size: int
) -> contextlib.AbstractContextManager[None]:
    """As xo-server: a disk for a VM in a set comes from an SR the set offers and is charged to
    it; any other needs `administrate` on its SR (as does one whose set was deleted)."""
    services = command.commands.services
    resource_set = None if vm is None else self_service.set_of_vm(services, vm)
    if resource_set is not None:
        set_id = resource_set["id"]
        self_service.check_constraints(services, set_id, command.user, [sr["id"]])
        return self_service.charged(services, set_id, {"disk": size}, command.user)
    command.check(sr["id"], "administrate")
    return contextlib.nullcontext()


async def _create(
    command: Command,
    params: dict[str, Any],
    sr: dict[str, Any],
    vm: dict[str, Any] | None,
    size: int,
) -> str:
    vdi_ref: str = await command.run(
        "VDI.create",
        {
            "name_label": params["name"],
            "name_description": "",
            "SR": sr["_xapiRef"],
            "virtual_size": size,
            "type": "user",
            "sharable": False,
            "read_only": False,
            "other_config": {},
        },
    )
    if vm is not None:
        await attach(
            command,
            vm,
            vdi_ref,
            position=params.get("position") or free_position(command, vm),
            mode=params.get("mode", "RW"),
            bootable=params.get("bootable", False),
        )
    vdi_id = command.id_of(vdi_ref)
    return vdi_id if vdi_id is not None else str(await command.send("VDI.get_uuid", vdi_ref))


def register(registry: Registry) -> None:
    @action(
        registry,
        "disk.create",
        resolve=[("vm", "VM", "administrate"), ("sr", "SR", "")],
    )
    async def create(command: Command, params: dict[str, Any]) -> str:
        sr = command.resolve(params["sr"], "SR")
        vm = command.resolve(params["vm"], "VM") if "vm" in params else None
        size = parse_size(params["size"])
        with _charged(command, vm, sr, size):
            return await _create(command, params, sr, vm, size)
