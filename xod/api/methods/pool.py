"""pool.*: pool settings, the default SR, the master, and the missing-updates read."""

from __future__ import annotations

from typing import Any

import orjson

from xod.acl.roles import ADMINISTRATE
from xod.api import errors
from xod.api.commands import Command, action
from xod.api.context import CallContext
from xod.api.methods.xapi_calls import query, update_other_config
from xod.api.registry import Registry
from xod.api.resolve import object_method
from xod.xapi import NULL_REF
from xod.xapi.errors import XapiError

# pool.set params kept in the pool's other_config, by the key xo-server uses.
_OTHER_CONFIG_NETWORKS = {
    "backupNetwork": "xo:backupNetwork",
    "migrationNetwork": "xo:migrationNetwork",
}
# pool.set SR params → the pool's setter.
_SR_SETTERS = {"suspendSr": "pool.set_suspend_image_SR", "crashDumpSr": "pool.set_crash_dump_SR"}


def register(registry: Registry) -> None:
    @action(
        registry,
        "pool.set",
        resolve=[
            ("id", "pool", ADMINISTRATE),
            ("suspendSr", "SR", ADMINISTRATE),
            ("crashDumpSr", "SR", ADMINISTRATE),
        ],
    )
    async def set_(command: Command, params: dict[str, Any]) -> None:
        ref = command.ref_of(params["id"], "pool")
        # Every object named is checked before anything changes.
        networks = {
            key: params[key] and command.resolve(params[key], "network")["uuid"]
            for key in _OTHER_CONFIG_NETWORKS
            if key in params
        }
        srs = {
            key: command.ref_of(params[key], "SR") if params[key] else NULL_REF
            for key in _SR_SETTERS
            if key in params
        }
        if "name_description" in params:
            await command.call("pool.set_name_description", ref, params["name_description"])
        if "name_label" in params:
            await command.call("pool.set_name_label", ref, params["name_label"])
        if "auto_poweron" in params:
            value = str(params["auto_poweron"]).lower()
            await update_other_config(command, "pool", ref, "auto_poweron", value)
        for key, uuid in networks.items():
            await update_other_config(
                command, "pool", ref, _OTHER_CONFIG_NETWORKS[key], uuid or None
            )
        for key, sr_ref in srs.items():
            await command.call(_SR_SETTERS[key], ref, sr_ref)
        if "migrationCompression" in params:
            await command.call(
                "pool.set_migration_compression", ref, params["migrationCompression"]
            )

    @action(registry, "pool.setDefaultSr", resolve=[("sr", "SR", ADMINISTRATE)])
    async def set_default_sr(command: Command, params: dict[str, Any]) -> None:
        sr = command.resolve(params["sr"], "SR")
        pool_ref = command.ref_of(sr["$pool"], "pool")
        await command.call("pool.set_default_SR", pool_ref, sr["_xapiRef"])

    @action(registry, "pool.setPoolMaster", resolve=[("host", "host", ADMINISTRATE)])
    async def set_pool_master(command: Command, params: dict[str, Any]) -> None:
        await command.run("pool.designate_new_master", command.ref_of(params["host"], "host"))

    @action(registry, "pool.rollingReboot", resolve=[("pool", "pool", ADMINISTRATE)])
    async def rolling_reboot(command: Command, params: dict[str, Any]) -> None:
        """Every host in turn, the master first (as xo-server does): disabled, emptied of its
        guests (live migration), rebooted, enabled. A host whose guests cannot go anywhere is
        enabled again and stops the round there (NO_HOSTS_AVAILABLE), the hosts before it
        done."""
        pool = command.resolve(params["pool"], "pool")
        hosts = sorted(
            (h for h in command.store.by_type("host").values() if h.get("$pool") == pool["id"]),
            key=lambda host: (host["id"] != pool["master"], host["name_label"]),
        )
        for host in hosts:
            ref = host["_xapiRef"]
            await command.run("host.disable", ref, False)
            try:
                await command.run("host.evacuate", ref, NULL_REF, 0)
            except XapiError:
                await command.run("host.enable", ref)  # as xo-server: left as it was found
                raise
            await command.run("host.reboot", ref)
            await command.run("host.enable", ref)

    @object_method(registry, "pool.listMissingPatches", resolve=[("host", "host", "view")])
    async def list_missing_patches(ctx: CallContext, params: dict[str, Any]) -> Any:
        """XCP-ng's updater plugin's list (xo-server's answer for an XCP-ng host)."""
        answer = await query(
            ctx,
            "pool.listMissingPatches",
            params["host"],
            "host",
            "host.call_plugin",
            "updater.py",
            "check_update",
            {},
        )
        try:
            updates = orjson.loads(answer)
        except orjson.JSONDecodeError:
            raise errors.operation_failed(
                params["host"], "INVALID_PLUGIN_ANSWER", "the host's updater answered no JSON"
            ) from None
        if isinstance(updates, dict) and updates.get("error") is not None:
            raise errors.operation_failed(
                params["host"], "UPDATER_ERROR", f"updater: {updates['error']}"
            )
        return updates
