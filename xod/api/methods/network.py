"""network.*: pool networks, VLANs and bonds, as xo-server makes and changes them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from xod.acl.roles import ADMINISTRATE
from xod.api.commands import Command, action
from xod.api.context import CallContext
from xod.api.methods.xapi_calls import update_other_config
from xod.api.registry import SIGNED_IN, Registry
from xod.xapi import NULL_REF
from xod.xapi.errors import XapiError

BOND_MODES = ("balance-slb", "active-backup", "lacp")
DEFAULT_DESCRIPTION = "Created with Xen Orchestra"
DEFAULT_MTU = 1500


async def _create_network(command: Command, params: dict[str, Any]) -> str:
    """xo-server's createNetwork: not automatic (new VMs don't get it by default)."""
    ref: str = await command.run(
        "network.create",
        {
            "name_label": params["name"],
            "name_description": params.get("description", DEFAULT_DESCRIPTION),
            "MTU": params.get("mtu", DEFAULT_MTU),
            "other_config": {"automatic": "false"},
        },
    )
    return ref


async def _network_id(command: Command, ref: str) -> str:
    network_id = command.id_of(ref)
    return (
        network_id if network_id is not None else str(await command.send("network.get_uuid", ref))
    )


async def _set_nbd(command: Command, ref: str, nbd: bool) -> None:
    await command.call("network.remove_purpose", ref, "insecure_nbd")
    await command.call("network.add_purpose" if nbd else "network.remove_purpose", ref, "nbd")


def register(registry: Registry) -> None:
    @action(registry, "network.create", resolve=[("pool", "pool", ADMINISTRATE)])
    async def create(command: Command, params: dict[str, Any]) -> str:
        command.resolve(params["pool"], "pool")
        pif_ref = command.ref_of(params["pif"], "PIF") if "pif" in params else None
        ref = await _create_network(command, params)
        if pif_ref is not None:
            try:
                await command.run("pool.create_VLAN_from_PIF", pif_ref, ref, params.get("vlan", 0))
            except XapiError:
                await command.run("network.destroy", ref)  # no half-made network left
                raise
        if params.get("nbd"):
            await command.call("network.add_purpose", ref, "nbd")
        return await _network_id(command, ref)

    @action(registry, "network.createBonded", resolve=[("pool", "pool", ADMINISTRATE)])
    async def create_bonded(command: Command, params: dict[str, Any]) -> dict[str, Any]:
        command.resolve(params["pool"], "pool")
        pifs = [command.resolve(pif_id, "PIF") for pif_id in params["pifs"]]
        ref = await _create_network(command, params)
        # Every PIF of the given PIFs' networks, grouped by host: one bond per host.
        members: dict[str, list[str]] = defaultdict(list)
        for network_id in dict.fromkeys(pif["$network"] for pif in pifs):
            for pif_id in command.resolve(network_id, "network")["PIFs"]:
                pif = command.resolve(pif_id, "PIF")
                members[pif["$host"]].append(pif["_xapiRef"])
        bonds: list[str] = []
        try:
            for refs in members.values():
                bonds.append(await command.run("Bond.create", ref, refs, "", params["bondMode"]))
        except XapiError:
            # As xo-server: a failed bond leaves neither the other bonds nor the network.
            for bond in bonds:
                await command.run("Bond.destroy", bond)
            await command.run("network.destroy", ref)
            raise
        # As xo-server: the XAPI record of the new network (clients read its `uuid`).
        record: dict[str, Any] = await command.send("network.get_record", ref)
        return record

    @action(registry, "network.set", resolve=[("id", "network", ADMINISTRATE)])
    async def set_(command: Command, params: dict[str, Any]) -> None:
        ref = command.ref_of(params["id"], "network")
        if "automatic" in params:
            value = "true" if params["automatic"] else None
            await update_other_config(command, "network", ref, "automatic", value)
        if "defaultIsLocked" in params:
            mode = "disabled" if params["defaultIsLocked"] else "unlocked"
            await command.call("network.set_default_locking_mode", ref, mode)
        if "mtu" in params:
            await command.call("network.set_MTU", ref, params["mtu"])
        if "name_description" in params:
            await command.call("network.set_name_description", ref, params["name_description"])
        if "name_label" in params:
            await command.call("network.set_name_label", ref, params["name_label"])
        if "nbd" in params:
            await _set_nbd(command, ref, params["nbd"])

    @action(registry, "network.delete", resolve=[("id", "network", ADMINISTRATE)])
    async def delete(command: Command, params: dict[str, Any]) -> None:
        network = command.resolve(params["id"], "network")
        records = [
            await command.send("PIF.get_record", command.ref_of(pif_id, "PIF"))
            for pif_id in network["PIFs"]
        ]
        for record in records:
            if record["VLAN_master_of"] != NULL_REF:
                await command.run("VLAN.destroy", record["VLAN_master_of"])
        for bond in dict.fromkeys(b for record in records for b in record["bond_master_of"]):
            await command.run("Bond.destroy", bond)
        await command.run("network.destroy", network["_xapiRef"])

    @registry.method("network.getBondModes", permission=SIGNED_IN)
    async def get_bond_modes(ctx: CallContext, params: dict[str, Any]) -> list[str]:
        return list(BOND_MODES)
