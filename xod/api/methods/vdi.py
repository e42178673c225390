"""vdi.*: VDI changes forwarded to the pool master."""

from __future__ import annotations

import contextlib
from typing import Any

from xod.api import errors
from xod.api.commands import Command, action
from xod.api.methods import self_service
from xod.api.methods.disk import parse_size
from xod.api.registry import Registry
from xod.xapi.errors import XapiError

VDI_TYPES = ("VDI", "VDI-snapshot", "VDI-unmanaged")
# What VDI.pool_migrate answers when the disk cannot move live: xo-server then copies it.
_COPY_INSTEAD = frozenset({"NO_HOSTS_AVAILABLE", "LICENCE_RESTRICTION", "VDI_NEEDS_VM_FOR_MIGRATE"})
# The VBD fields a VBD keeps when it is re-created on the copy of its VDI.
_VBD_FIELDS = (
    "VM", "userdevice", "bootable", "mode", "type", "unpluggable", "empty", "other_config",
    "qos_algorithm_type", "qos_algorithm_params",
)  # fmt: skip


async def _copy_and_replace(command: Command, vdi: dict[str, Any], sr_ref: str) -> None:
    """The disk copied to the SR, its VBDs moved to the copy, the original destroyed."""
    copy_ref = await command.run("VDI.copy", vdi["_xapiRef"], sr_ref)
    for vbd_id in vdi.get("$VBDs") or ():
        vbd_ref = command.ref_of(vbd_id, "VBD")
        record = await command.send("VBD.get_record", vbd_ref)
        await command.run("VBD.destroy", vbd_ref)
        await command.run("VBD.create", {**{k: record[k] for k in _VBD_FIELDS}, "VDI": copy_ref})
    await command.run("VDI.destroy", vdi["_xapiRef"])


def _charged_growth(
    command: Command, vdi: dict[str, Any], size: int
) -> contextlib.AbstractContextManager[None]:
    """A disk grown: charged to the set of the one VM it belongs to (as xo-server: a disk of
    a VM in a set grows within the set's quota), else the caller must operate its SR."""
    services = command.commands.services
    vbds = vdi.get("$VBDs") or ()
    vm = command.store.get((command.store.get(vbds[0]) or {}).get("VM") or "") if vbds else None
    resource_set = self_service.set_of_vm(services, vm) if vm and len(vbds) == 1 else None
    if resource_set is None:
        command.check(vdi["$SR"], "operate")
        return contextlib.nullcontext()
    set_id = resource_set["id"]
    self_service.check_constraints(services, set_id, command.user)
    return self_service.charged(services, set_id, {"disk": size - vdi["size"]}, command.user)


def register(registry: Registry) -> None:
    @action(registry, "vdi.set", resolve=[("id", VDI_TYPES, "administrate")])
    async def set_(command: Command, params: dict[str, Any]) -> None:
        vdi = command.resolve(params["id"], VDI_TYPES)
        ref = vdi["_xapiRef"]
        if "size" in params:
            size = parse_size(params["size"])
            if size < vdi["size"]:
                raise errors.invalid_parameter(
                    "/size",
                    "minimum",
                    f"cannot set new size ({size}) below the current size ({vdi['size']})",
                    {"limit": vdi["size"]},
                )
            with _charged_growth(command, vdi, size):
                await command.run("VDI.resize", ref, size)
        if "name_label" in params:
            await command.call("VDI.set_name_label", ref, params["name_label"])
        if "name_description" in params:
            await command.call("VDI.set_name_description", ref, params["name_description"])

    @action(registry, "vdi.delete", resolve=[("id", VDI_TYPES, "administrate")])
    async def delete(command: Command, params: dict[str, Any]) -> None:
        vdi = command.resolve(params["id"], VDI_TYPES)
        set_id = self_service.set_of_disk(command.store, vdi)
        await command.run("VDI.destroy", vdi["_xapiRef"])
        if set_id is not None:  # as xo-server: the disk's size goes back to its VM's set
            self_service.release(command.commands.services, set_id, {"disk": vdi["size"]})

    @action(
        registry,
        "vdi.migrate",
        resolve=[("id", VDI_TYPES, "administrate"), ("sr_id", "SR", "")],
    )
    async def migrate(command: Command, params: dict[str, Any]) -> None:
        vdi = command.resolve(params["id"], VDI_TYPES)
        sr_ref = command.ref_of(params["sr_id"], "SR")
        command.check(params["sr_id"], "administrate")  # where the disk goes
        if vdi["$SR"] == params["sr_id"]:
            return
        try:
            await command.run("VDI.pool_migrate", vdi["_xapiRef"], sr_ref, {})
        except XapiError as error:
            if error.code not in _COPY_INSTEAD:
                raise
            await _copy_and_replace(command, vdi, sr_ref)
