"""vdi.*: VDI changes forwarded to the pool master."""

from __future__ import annotations

from typing import Any

from xod.api.commands import Command, action
from xod.api.registry import Registry

VDI_TYPES = ("VDI", "VDI-snapshot", "VDI-unmanaged")


def register(registry: Registry) -> None:
    @action(registry, "vdi.set")
    async def set_(command: Command, params: dict[str, Any]) -> None:
        ref = command.ref_of(params["id"], VDI_TYPES)
        if "name_label" in params:
            await command.call("VDI.set_name_label", ref, params["name_label"])
        if "name_description" in params:
            await command.call("VDI.set_name_description", ref, params["name_description"])

    @action(registry, "vdi.delete")
    async def delete(command: Command, params: dict[str, Any]) -> None:
        await command.run("VDI.destroy", command.ref_of(params["id"], VDI_TYPES))
