"""host.*: host actions forwarded to the pool master, as xo-server does them."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from xod.acl.roles import ADMINISTRATE, OPERATE, VIEW
from xod.api.commands import Command, action
from xod.api.context import CallContext
from xod.api.methods.xapi_calls import query, update_other_config
from xod.api.registry import Registry
from xod.api.resolve import object_method
from xod.cache.objects.values import to_timestamp
from xod.xapi import NULL_REF
from xod.xapi.errors import XapiError

# How far a host's clock may be from xod's before the UI warns (xo-server's 30 s).
TIME_CONSISTENCY_SECONDS = 30.0


def register(registry: Registry) -> None:
    register_admin(registry)

    @action(registry, "host.enable", resolve=[("id", "host", ADMINISTRATE)])
    async def enable(command: Command, params: dict[str, Any]) -> None:
        await command.run("host.enable", command.ref_of(params["id"], "host"))

    @action(registry, "host.disable", resolve=[("id", "host", ADMINISTRATE)])
    async def disable(command: Command, params: dict[str, Any]) -> None:
        # auto_enable = not transient: a transient disable is undone when the host restarts.
        auto_enable = bool(params.get("transient", False))
        await command.run("host.disable", command.ref_of(params["id"], "host"), auto_enable)

    @action(registry, "host.restart", resolve=[("id", "host", OPERATE)])
    async def restart(command: Command, params: dict[str, Any]) -> None:
        ref = command.ref_of(params["id"], "host")
        # As xo-server: disable first (a reboot requires it); move the VMs away unless forced.
        await command.run("host.disable", ref, True)
        if not params.get("force"):
            await command.run("host.evacuate", ref, NULL_REF, 0)
        await command.run("host.reboot", ref)

    @action(registry, "host.setMaintenanceMode", resolve=[("id", "host", ADMINISTRATE)])
    async def set_maintenance_mode(command: Command, params: dict[str, Any]) -> None:
        ref = command.ref_of(params["id"], "host")
        if params["maintenance"]:
            await command.run("host.disable", ref, False)
            await command.run("host.evacuate", ref, NULL_REF, 0)
        else:
            await command.run("host.enable", ref)


def register_admin(registry: Registry) -> None:
    """host.* beyond power: names, settings, leaving the pool, and the UI's per-page reads."""

    @action(registry, "host.set", resolve=[("id", "host", ADMINISTRATE)])
    async def set_(command: Command, params: dict[str, Any]) -> None:
        host = command.resolve(params["id"], "host")
        ref = host["_xapiRef"]
        if "name_label" in params:
            await command.call("host.set_name_label", ref, params["name_label"])
        if "name_description" in params:
            await command.call("host.set_name_description", ref, params["name_description"])
        if "iscsiIqn" in params:
            await command.call("host.set_iscsi_iqn", ref, params["iscsiIqn"])
        if "multipathing" in params:
            await _set_multipathing(command, host, params["multipathing"])

    @action(registry, "host.scanPifs", resolve=[("id", "host", ADMINISTRATE)])
    async def scan_pifs(command: Command, params: dict[str, Any]) -> None:
        await command.run("PIF.scan", command.ref_of(params["id"], "host"))

    @action(registry, "host.detach", resolve=[("id", "host", ADMINISTRATE)])
    async def detach(command: Command, params: dict[str, Any]) -> None:
        await command.run("pool.eject", command.ref_of(params["id"], "host"))

    @action(registry, "host.forget", resolve=[("id", "host", ADMINISTRATE)])
    async def forget(command: Command, params: dict[str, Any]) -> None:
        await command.run("host.forget", command.ref_of(params["id"], "host"))

    @action(registry, "host.emergencyShutdownHost", resolve=[("host", "host", ADMINISTRATE)])
    async def emergency_shutdown(command: Command, params: dict[str, Any]) -> None:
        host = command.resolve(params["host"], "host")
        # As xo-server: every guest suspended (one that cannot be is left to the shutdown).
        for vm_id in host.get("residentVms") or ():
            vm = command.store.get(vm_id) or {}
            if vm.get("type") == "VM" and vm.get("power_state") == "Running":
                with contextlib.suppress(XapiError):
                    await command.run("VM.suspend", vm["_xapiRef"])
        await command.call("host.disable", host["_xapiRef"])
        await command.run("host.shutdown", host["_xapiRef"])

    @object_method(registry, "host.isHostServerTimeConsistent", resolve=[("host", "host", VIEW)])
    async def is_time_consistent(ctx: CallContext, params: dict[str, Any]) -> bool:
        stamp = await query(
            ctx, "host.isHostServerTimeConsistent", params["host"], "host", "host.get_servertime"
        )
        server_time = to_timestamp(stamp)
        return server_time is not None and abs(server_time - time.time()) < TIME_CONSISTENCY_SECONDS

    @object_method(registry, "host.getSchedulerGranularity", resolve=[("id", "host", VIEW)])
    async def scheduler_granularity(ctx: CallContext, params: dict[str, Any]) -> str:
        return str(
            await query(
                ctx, "host.getSchedulerGranularity", params["id"], "host", "host.get_sched_gran"
            )
        )


async def _set_multipathing(command: Command, host: dict[str, Any], enabled: bool) -> None:
    """As xo-server (and XenCenter): the host's other_config keys, changed while it is disabled."""
    ref = host["_xapiRef"]
    if host.get("enabled"):
        await command.run("host.disable", ref, False)
    try:
        await update_other_config(command, "host", ref, "multipathing", str(enabled).lower())
        await update_other_config(
            command, "host", ref, "multipathhandle", "dmp" if enabled else None
        )
    finally:
        if host.get("enabled"):
            await command.run("host.enable", ref)
