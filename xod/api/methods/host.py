"""host.*: host actions forwarded to the pool master, as xo-server does them."""

from __future__ import annotations

from typing import Any

from xod.api.commands import Command, action
from xod.api.registry import Registry
from xod.xapi import NULL_REF


def register(registry: Registry) -> None:
    @action(registry, "host.enable")
    async def enable(command: Command, params: dict[str, Any]) -> None:
        await command.run("host.enable", command.ref_of(params["id"], "host"))

    @action(registry, "host.disable")
    async def disable(command: Command, params: dict[str, Any]) -> None:
        # auto_enable = not transient: a transient disable is undone when the host restarts.
        auto_enable = bool(params.get("transient", False))
        await command.run("host.disable", command.ref_of(params["id"], "host"), auto_enable)

    @action(registry, "host.restart")
    async def restart(command: Command, params: dict[str, Any]) -> None:
        ref = command.ref_of(params["id"], "host")
        # As xo-server: disable first (a reboot requires it); move the VMs away unless forced.
        await command.run("host.disable", ref, True)
        if not params.get("force"):
            await command.run("host.evacuate", ref, NULL_REF, 0)
        await command.run("host.reboot", ref)

    @action(registry, "host.setMaintenanceMode")
    async def set_maintenance_mode(command: Command, params: dict[str, Any]) -> None:
        ref = command.ref_of(params["id"], "host")
        if params["maintenance"]:
            await command.run("host.disable", ref, False)
            await command.run("host.evacuate", ref, NULL_REF, 0)
        else:
            await command.run("host.enable", ref)
