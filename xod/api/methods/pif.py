"""pif.*: a host's physical and VLAN interfaces, as xo-server changes them."""

from __future__ import annotations

from typing import Any

from xod.acl.roles import ADMINISTRATE
from xod.api import errors
from xod.api.commands import Command, action
from xod.api.context import CallContext
from xod.api.registry import SIGNED_IN, Registry
from xod.xapi import NULL_REF

IPV4_MODES = ("None", "DHCP", "Static")
IPV6_MODES = ("None", "DHCP", "Static", "Autoconf")


def register(registry: Registry) -> None:
    @action(registry, "pif.connect", resolve=[("id", "PIF", ADMINISTRATE)])
    async def connect(command: Command, params: dict[str, Any]) -> None:
        await command.run("PIF.plug", command.ref_of(params["id"], "PIF"))

    @action(registry, "pif.disconnect", resolve=[("id", "PIF", ADMINISTRATE)])
    async def disconnect(command: Command, params: dict[str, Any]) -> None:
        await command.run("PIF.unplug", command.ref_of(params["id"], "PIF"))

    @action(registry, "pif.delete", resolve=[("id", "PIF", ADMINISTRATE)])
    async def delete(command: Command, params: dict[str, Any]) -> None:
        await command.run("PIF.forget", command.ref_of(params["id"], "PIF"))

    @action(registry, "pif.reconfigureIp", resolve=[("id", "PIF", ADMINISTRATE)])
    async def reconfigure_ip(command: Command, params: dict[str, Any]) -> None:
        pif = command.resolve(params["id"], "PIF")
        ref = pif["_xapiRef"]
        gateway, dns = params.get("gateway", ""), params.get("dns", "")
        if "mode" in params:
            await command.call(
                "PIF.reconfigure_ip",
                ref,
                params["mode"],
                params.get("ip", ""),
                params.get("netmask", ""),
                gateway,
                dns,
            )
        ipv6 = params.get("ipv6", "")
        ipv6_mode = params.get("ipv6Mode")
        if ipv6_mode is not None or (ipv6 and ipv6 not in (pif.get("ipv6") or ())):
            await command.call(
                "PIF.reconfigure_ipv6", ref, ipv6_mode or "Static", ipv6, gateway, dns
            )

    @action(registry, "pif.editPif", resolve=[("id", "PIF", ADMINISTRATE)])
    async def edit_pif(command: Command, params: dict[str, Any]) -> None:
        """A VLAN PIF's tag changed: its network's VLANs are made again with the new tag, on
        the same physical interfaces."""
        pif = command.resolve(params["id"], "PIF")
        try:
            tag = int(params["vlan"])
        except ValueError:
            raise errors.invalid_parameter("/vlan", "type", "must be an integer") from None
        network_ref = command.ref_of(pif["$network"], "network")
        record = await command.send("PIF.get_record", pif["_xapiRef"])
        if record["VLAN_master_of"] == NULL_REF:
            raise errors.invalid_parameter("/id", "vlan", "this PIF is not a VLAN")
        vlan = await command.send("VLAN.get_record", record["VLAN_master_of"])
        for pif_id in command.resolve(pif["$network"], "network")["PIFs"]:
            master = await command.send("PIF.get_VLAN_master_of", command.ref_of(pif_id, "PIF"))
            await command.run("VLAN.destroy", master)
        await command.run("pool.create_VLAN_from_PIF", vlan["tagged_PIF"], network_ref, tag)

    @registry.method("pif.getIpv4ConfigurationModes", permission=SIGNED_IN)
    async def ipv4_modes(ctx: CallContext, params: dict[str, Any]) -> list[str]:
        return list(IPV4_MODES)

    @registry.method("pif.getIpv6ConfigurationModes", permission=SIGNED_IN)
    async def ipv6_modes(ctx: CallContext, params: dict[str, Any]) -> list[str]:
        return list(IPV6_MODES)
