"""vif.*: a VM's network interfaces, as xo-server changes them.

`vif.set` moves a VIF to another network with `VIF.move`; a new MAC address needs a new VIF
(xapi cannot change one), so the VIF is re-created on the same device with the same settings,
and `vif.set` answers the VIF's id, which then changes.
"""

from __future__ import annotations

from typing import Any

from xod.api.commands import Command, action
from xod.api.context import CallContext
from xod.api.methods import self_service
from xod.api.methods.xapi_calls import update_other_config
from xod.api.registry import SIGNED_IN, Registry

# XAPI's vif_locking_mode values (vif.getLockingModeValues).
LOCKING_MODES = ("network_default", "locked", "unlocked", "disabled")
_LIVE = ("Running", "Paused")


async def unplug_force(command: Command, ref: str) -> None:
    await command.run("VIF.unplug_force", ref)


def _qos(rate_limit: float | None) -> tuple[str, dict[str, str]]:
    """A VIF's QoS fields for a rate limit in kB/s (None: no limit)."""
    if rate_limit is None:
        return "", {}
    return "ratelimit", {
        "kbps": str(int(rate_limit) if rate_limit == int(rate_limit) else rate_limit)
    }


def _ethtool_tx(enabled: bool) -> str:
    """`other_config['ethtool-tx']` for TX checksum offloading on or off."""
    return "true" if enabled else "false"


async def _recreate(command: Command, vif: dict[str, Any], params: dict[str, Any]) -> str:
    """A copy of the VIF with `params` applied, on the same device; the old one is gone."""
    ref = vif["_xapiRef"]
    record = await command.send("VIF.get_record", ref)
    network = (
        command.ref_of(params["network"], "network") if "network" in params else record["network"]
    )
    attached = params.get("attached", vif["attached"])
    qos_type, qos_params = record["qos_algorithm_type"], record["qos_algorithm_params"]
    if "rateLimit" in params:
        qos_type, qos_params = _qos(params["rateLimit"])
    other_config = dict(record["other_config"])
    if "txChecksumming" in params:
        other_config["ethtool-tx"] = _ethtool_tx(params["txChecksumming"])
    new_record = {
        "device": record["device"],
        "network": network,
        "VM": record["VM"],
        "MAC": params.get("mac", record["MAC"]),
        "MTU": record["MTU"],
        "other_config": other_config,
        "qos_algorithm_type": qos_type,
        "qos_algorithm_params": qos_params,
        "locking_mode": params.get("lockingMode", record["locking_mode"]),
        "ipv4_allowed": params.get("allowedIpv4Addresses", record["ipv4_allowed"]),
        "ipv6_allowed": params.get("allowedIpv6Addresses", record["ipv6_allowed"]),
    }
    if vif["attached"]:
        await unplug_force(command, ref)
    await command.run("VIF.destroy", ref)
    new_ref = await command.run("VIF.create", new_record)
    vm = command.store.get(vif["$VM"]) or {}
    if attached and vm.get("power_state") in _LIVE:
        await command.run("VIF.plug", new_ref)
    return command.id_of(new_ref) or await command.send("VIF.get_uuid", new_ref)


async def _edit(command: Command, vif: dict[str, Any], params: dict[str, Any]) -> None:
    ref = vif["_xapiRef"]
    if "network" in params:
        network = command.ref_of(params["network"], "network")
        if network != (command.store.get(vif["$network"]) or {}).get("_xapiRef"):
            await command.run("VIF.move", ref, network)
    if "lockingMode" in params:
        await command.call("VIF.set_locking_mode", ref, params["lockingMode"])
    if "allowedIpv4Addresses" in params:
        await command.call("VIF.set_ipv4_allowed", ref, params["allowedIpv4Addresses"])
    if "allowedIpv6Addresses" in params:
        await command.call("VIF.set_ipv6_allowed", ref, params["allowedIpv6Addresses"])
    if "rateLimit" in params:
        qos_type, qos_params = _qos(params["rateLimit"])
        await command.call("VIF.set_qos_algorithm_type", ref, qos_type)
        await command.call("VIF.set_qos_algorithm_params", ref, qos_params)
    if "txChecksumming" in params:
        value = _ethtool_tx(params["txChecksumming"])
        await update_other_config(command, "VIF", ref, "ethtool-tx", value)
    if "attached" in params and params["attached"] != vif["attached"]:
        if params["attached"]:
            await command.run("VIF.plug", ref)
        else:
            await unplug_force(command, ref)


def _check_set(command: Command, vif: dict[str, Any], params: dict[str, Any]) -> None:
    """What vif.set needs beyond `operate` on the VIF, as xo-server: `operate` on the network
    for a locking mode, `administrate` on it for a MAC address, and a new network must be one
    the caller may operate (or one the set of the VIF's VM offers)."""
    network = params.get("network")
    current = network or vif["$network"]
    if "lockingMode" in params:
        command.check(current, "operate")
    if command.is_admin:
        return
    if "mac" in params:
        command.check(current, "administrate")
    if network is not None and network != vif["$network"]:
        services = command.commands.services
        resource_set = self_service.set_of_vm(services, command.store.get(vif["$VM"]) or {})
        if resource_set is not None:
            self_service.check_constraints(services, resource_set["id"], command.user, [network])
        else:
            command.check(network, "operate")


def register(registry: Registry) -> None:
    @action(registry, "vif.connect", resolve=[("id", "VIF", "operate")])
    async def connect(command: Command, params: dict[str, Any]) -> None:
        await command.run("VIF.plug", command.ref_of(params["id"], "VIF"))

    @action(registry, "vif.disconnect", resolve=[("id", "VIF", "operate")])
    async def disconnect(command: Command, params: dict[str, Any]) -> None:
        await unplug_force(command, command.ref_of(params["id"], "VIF"))

    @action(registry, "vif.delete", resolve=[("id", "VIF", "administrate")])
    async def delete(command: Command, params: dict[str, Any]) -> None:
        vif = command.resolve(params["id"], "VIF")
        if vif["attached"]:
            await unplug_force(command, vif["_xapiRef"])
        await command.run("VIF.destroy", vif["_xapiRef"])

    @action(registry, "vif.set", resolve=[("id", "VIF", "operate"), ("network", "network", "")])
    async def set_(command: Command, params: dict[str, Any]) -> str:
        vif = command.resolve(params["id"], "VIF")
        if "network" in params:
            command.resolve(params["network"], "network")  # checked before anything changes
        _check_set(command, vif, params)
        if "mac" in params and params["mac"] != vif["MAC"]:
            return await _recreate(command, vif, params)
        await _edit(command, vif, params)
        return str(vif["id"])

    @registry.method("vif.getLockingModeValues", permission=SIGNED_IN)
    async def get_locking_mode_values(ctx: CallContext, params: dict[str, Any]) -> list[str]:
        return list(LOCKING_MODES)
