"""The call sequences of Xen Orchestra's Terraform provider (through its Go SDK,
xenorchestra-go-sdk `client/*.go`) for networks, bonded networks, a VM's interfaces and its
disks, replayed against xod and the simulator: create, read the way the SDK reads (every object
of a type from `xo.getAllObjects {filter: {type}}`, then compared client-side), update, delete.

The SDK talks plain JSON-RPC over a WebSocket, as the test client does; its waits are polls
(`state.go`: at once, then every 100 ms doubling to 10 s, up to a timeout)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.api.harness import Client
from tests.api.test_commands_support import commands_env

GiB = 1024**3


class Sdk:
    """The Go SDK's reads and waits, over a signed-in JSON-RPC client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def all_of(self, object_type: str) -> list[dict[str, Any]]:
        """`getObjectTypeFilter` + `xo.getAllObjects`: every object of the type."""
        objects = await self.client.call("xo.getAllObjects", {"filter": {"type": object_type}})
        return list(objects.values())

    async def find(self, object_type: str, **wanted: Any) -> list[dict[str, Any]]:
        """The SDK's client-side `Compare`: the objects whose fields equal `wanted`."""
        return [
            obj
            for obj in await self.all_of(object_type)
            if all(obj.get(key) == value for key, value in wanted.items())
        ]

    async def wait_for(
        self, what: str, refresh: Callable[[], Awaitable[bool]], timeout: float = 10.0
    ) -> int:
        """`StateChangeConf.WaitForState`; how many refreshes it took (1: true at once)."""
        deadline = time.monotonic() + timeout
        delay = 0.1
        refreshes = 1
        while not await refresh():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            refreshes += 1
        return refreshes


async def test_network_resource(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        sdk = Sdk(env.client)
        call = env.client.call
        [pool] = await sdk.all_of("pool")

        # resource_xenorchestra_network Create: network.create without automatic and
        # defaultIsLocked, then network.set with them (and nbd), then a wait on the fields.
        network_id = await call(
            "network.create",
            {
                "pool": pool["id"],
                "name": "tf-net",
                "description": "by terraform",
                "mtu": 1500,
                "nbd": False,
            },
        )
        assert isinstance(network_id, str)
        assert (
            await call(
                "network.set",
                {"id": network_id, "automatic": True, "defaultIsLocked": True, "nbd": False},
            )
            is True
        )

        async def settled() -> bool:
            found = await sdk.find("network", id=network_id)
            return bool(found) and found[0]["automatic"] is True and found[0]["nbd"] is False

        # The effect is there when the call returns: the first poll sees it.
        assert await sdk.wait_for("network.set", settled) == 1

        # Read: the fields the SDK decodes.
        [network] = await sdk.find("network", id=network_id)
        assert {
            key: network[key]
            for key in (
                "name_label",
                "name_description",
                "automatic",
                "defaultIsLocked",
                "$poolId",
                "MTU",
                "nbd",
                "insecureNbd",
                "PIFs",
            )
        } == {
            "name_label": "tf-net",
            "name_description": "by terraform",
            "automatic": True,
            "defaultIsLocked": True,
            "$poolId": pool["id"],
            "MTU": 1500,
            "nbd": False,
            "insecureNbd": False,
            "PIFs": [],
        }
        assert network["bridge"]

        # Update: the SDK always sends automatic and nbd.
        assert (
            await call(
                "network.set",
                {
                    "id": network_id,
                    "automatic": False,
                    "nbd": True,
                    "defaultIsLocked": False,
                    "name_label": "tf-net-2",
                    "name_description": "",
                },
            )
            is True
        )
        [network] = await sdk.find("network", id=network_id)
        assert (network["name_label"], network["automatic"], network["nbd"]) == (
            "tf-net-2",
            False,
            True,
        )
        assert network["defaultIsLocked"] is False

        # A VLAN network (pif + vlan), read back through its PIFs as the data sources do.
        [eth1] = await sdk.find("PIF", device="eth1", vlan=-1, **{"$host": pool["master"]})
        vlan_id = await call(
            "network.create", {"pool": pool["id"], "name": "tf-vlan", "pif": eth1["id"], "vlan": 77}
        )
        vlan_pifs = await sdk.find("PIF", **{"$network": vlan_id})
        assert vlan_pifs and all(pif["vlan"] == 77 and pif["device"] == "eth1" for pif in vlan_pifs)
        assert sorted(pif["id"] for pif in vlan_pifs) == sorted(
            (await sdk.find("network", id=vlan_id))[0]["PIFs"]
        )

        # Delete: gone from the next read.
        for doomed in (network_id, vlan_id):
            assert await call("network.delete", {"id": doomed}) is True
            assert await sdk.find("network", id=doomed) == []
        assert await sdk.find("PIF", **{"$network": vlan_id}) == []


async def test_bonded_network_resource(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        sdk = Sdk(env.client)
        [pool] = await sdk.all_of("pool")
        pifs = await sdk.find("PIF", physical=True, **{"$host": pool["master"]})
        result = await env.client.call(
            "network.createBonded",
            {
                "pool": pool["id"],
                "name": "tf-bond",
                "description": "",
                "mtu": 1500,
                "bondMode": "lacp",
                "pifs": [pif["id"] for pif in pifs],
            },
        )
        network_id = result["uuid"]  # all the SDK reads of the answer
        [network] = await sdk.find("network", id=network_id)
        assert (network["name_label"], network["automatic"], network["isBonded"]) == (
            "tf-bond",
            False,
            True,
        )
        bonds = await sdk.all_of("bond")
        assert bonds and all(
            bond["mode"] == "lacp" and bond["$poolId"] == pool["id"] for bond in bonds
        )
        masters = await sdk.find("PIF", isBondMaster=True, **{"$network": network_id})
        assert sorted(pif["id"] for pif in masters) == sorted(bond["master"] for bond in bonds)
        assert len(await sdk.find("PIF", isBondSlave=True)) == 2 * len(bonds)

        assert await env.client.call("network.delete", {"id": network_id}) is True
        assert await sdk.find("network", id=network_id) == []
        assert await sdk.all_of("bond") == []
        assert await sdk.find("PIF", isBondSlave=True) == []


async def test_vm_interfaces_and_disks(tmp_path: Path) -> None:
    """The VM resource's network and disk blocks: VIFs read by `$VM`, connected, disconnected
    and deleted; disks created with disk.create, renamed, grown, detached, deleted (then polled
    until the VDI is gone, as `DeleteVDI` does)."""
    async with commands_env(tmp_path) as env:
        sdk = Sdk(env.client)
        call = env.client.call
        vm_id = (await env.vm_in_state("Running"))["id"]
        [vm] = await sdk.find("VM", id=vm_id)

        # Interfaces: GetVIFs (type VIF, compared on $VM), then the state changes.
        vifs = await sdk.find("VIF", **{"$VM": vm["id"]})
        assert vifs and all(
            {"id", "attached", "$network", "device", "MAC"} <= vif.keys() for vif in vifs
        )
        vif = vifs[0]
        assert await call("vif.disconnect", {"id": vif["id"]}) is True
        assert (await sdk.find("VIF", id=vif["id"]))[0]["attached"] is False
        assert await call("vif.connect", {"id": vif["id"]}) is True
        assert (await sdk.find("VIF", id=vif["id"]))[0]["attached"] is True
        # DeleteVIF: disconnect, then delete.
        assert await call("vif.disconnect", {"id": vif["id"]}) is True
        assert await call("vif.delete", {"id": vif["id"]}) is True
        assert await sdk.find("VIF", id=vif["id"]) == []
        assert vif["id"] not in (await sdk.find("VM", id=vm["id"]))[0]["VIFs"]

        # Disks: CreateDisk (disk.create {name, size, sr, vm}), then the VBD/VDI reads.
        [sr] = await sdk.find("SR", shared=True, content_type="user")
        vdi_id = await call(
            "disk.create", {"name": "tf-disk", "size": 4 * GiB, "sr": sr["id"], "vm": vm["id"]}
        )
        [vdi] = await sdk.find("VDI", id=vdi_id)
        assert {k: vdi[k] for k in ("name_label", "size", "$SR", "$poolId")} == {
            "name_label": "tf-disk",
            "size": 4 * GiB,
            "$SR": sr["id"],
            "$poolId": vm["$poolId"],
        }
        [vbd] = await sdk.find("VBD", VDI=vdi_id)
        assert (vbd["VM"], vbd["attached"], vbd["is_cd_drive"], vbd["read_only"]) == (
            vm["id"],
            True,
            False,
            False,
        )
        assert isinstance(vbd["position"], str) and vbd["position"] != "3"  # strconv.Atoi
        assert vbd["id"] in (await sdk.find("VM", id=vm["id"]))[0]["$VBDs"]

        # UpdateVDI (names), then the resize the provider sends alone.
        assert (
            await call(
                "vdi.set", {"id": vdi_id, "name_label": "tf-disk-2", "name_description": "data"}
            )
            is True
        )
        assert await call("vdi.set", {"id": vdi_id, "size": 6 * GiB}) is True
        [vdi] = await sdk.find("VDI", id=vdi_id)
        assert (vdi["name_label"], vdi["name_description"], vdi["size"]) == (
            "tf-disk-2",
            "data",
            6 * GiB,
        )

        # Disconnect/connect the drive, then DeleteVDI: disconnect, delete, poll until gone.
        assert await call("vbd.disconnect", {"id": vbd["id"]}) is True
        assert (await sdk.find("VBD", id=vbd["id"]))[0]["attached"] is False
        assert await call("vbd.connect", {"id": vbd["id"]}) is True
        assert await call("vbd.disconnect", {"id": vbd["id"]}) is True
        assert await call("vdi.delete", {"id": vdi_id}) is True

        async def gone() -> bool:
            return await sdk.find("VDI", id=vdi_id) == []

        assert await sdk.wait_for("the VDI to go", gone, timeout=60) == 1
        assert await sdk.find("VBD", id=vbd["id"]) == []
