"""vbd.*: a VM's disk and CD drives, as xo-server changes them."""

from __future__ import annotations

import contextlib
from typing import Any

from xod.acl.roles import ADMINISTRATE
from xod.api.commands import Command, action
from xod.api.methods import self_service
from xod.api.registry import Registry
from xod.xapi.errors import XapiError


async def unplug(command: Command, ref: str) -> None:
    """A forced unplug; a VBD xapi calls not unpluggable is made unpluggable first, as
    xo-server does when the guest lacks hotplug support."""
    try:
        await command.run("VBD.unplug_force", ref)
    except XapiError as error:
        if error.code != "VBD_NOT_UNPLUGGABLE":
            raise
        await command.call("VBD.set_unpluggable", ref, True)
        await command.run("VBD.unplug_force", ref)


def register(registry: Registry) -> None:
    @action(registry, "vbd.connect", resolve=[("id", "VBD", ADMINISTRATE)])
    async def connect(command: Command, params: dict[str, Any]) -> None:
        await command.run("VBD.plug", command.ref_of(params["id"], "VBD"))

    @action(registry, "vbd.disconnect", resolve=[("id", "VBD", ADMINISTRATE)])
    async def disconnect(command: Command, params: dict[str, Any]) -> None:
        await unplug(command, command.ref_of(params["id"], "VBD"))

    @action(registry, "vbd.delete", resolve=[("id", "VBD", ADMINISTRATE)])
    async def delete(command: Command, params: dict[str, Any]) -> None:
        vbd = command.resolve(params["id"], "VBD")
        vdi = command.store.get(vbd.get("VDI") or "")
        set_id = (command.store.get(vbd["VM"] or "") or {}).get("resourceSet")
        if vbd["attached"]:
            # As xo-server: a failed unplug does not stop the removal (destroy then says why).
            with contextlib.suppress(XapiError):
                await unplug(command, vbd["_xapiRef"])
        await command.run("VBD.destroy", vbd["_xapiRef"])
        if set_id and vdi is not None and not vbd.get("is_cd_drive"):
            # As xo-server: the disk no longer counts in its VM's set.
            self_service.release(command.commands.services, set_id, {"disk": vdi["size"]})

    @action(registry, "vbd.set", resolve=[("id", "VBD", ADMINISTRATE)])
    async def set_(command: Command, params: dict[str, Any]) -> None:
        ref = command.ref_of(params["id"], "VBD")
        if "position" in params:
            await command.call("VBD.set_userdevice", ref, str(params["position"]))

    @action(registry, "vbd.setBootable", resolve=[("vbd", "VBD", ADMINISTRATE)])
    async def set_bootable(command: Command, params: dict[str, Any]) -> None:
        ref = command.ref_of(params["vbd"], "VBD")
        await command.call("VBD.set_bootable", ref, params["bootable"])
