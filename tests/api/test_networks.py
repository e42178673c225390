"""network.*, pif.* and the bond objects through xod's JSON-RPC API against the simulator: each
effect is in the cache when the call returns, XAPI refusals arrive as XO codes, invalid params
as code 10."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.harness import RpcError
from tests.api.test_commands_support import Env, commands_env


async def _error(env: Env, method: str, params: dict) -> RpcError:
    with pytest.raises(RpcError) as raised:
        await env.client.call(method, params)
    return raised.value


async def _pool_id(env: Env) -> str:
    return next(iter(await env.objects({"type": "pool"})))


async def _master_pif(env: Env, device: str) -> dict:
    pool = await env.object(await _pool_id(env))
    pifs = await env.objects({"type": "PIF", "$host": pool["master"], "device": device})
    return next(pif for pif in pifs.values() if pif["vlan"] == -1)


async def test_network_create_set_delete(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        call = env.client.call
        pool_id = await _pool_id(env)

        plain = await call("network.create", {"pool": pool_id, "name": "lab"})
        network = await env.object(plain)
        assert (network["name_label"], network["name_description"]) == (
            "lab",
            "Created with Xen Orchestra",
        )
        assert (network["MTU"], network["automatic"], network["nbd"], network["PIFs"]) == (
            1500,
            False,
            False,
            [],
        )
        assert network["bridge"].startswith("xapi") and network["isBonded"] is False

        # With a PIF: a VLAN on every host that has the same device.
        eth1 = await _master_pif(env, "eth1")
        tagged = await call(
            "network.create",
            {
                "pool": pool_id,
                "name": "vlan 42",
                "description": "",
                "pif": eth1["id"],
                "vlan": 42,
                "mtu": 9000,
                "nbd": True,
            },
        )
        network = await env.object(tagged)
        assert (network["MTU"], network["nbd"], network["name_description"]) == (9000, True, "")
        pifs = [(await env.object(pif_id)) for pif_id in network["PIFs"]]
        hosts = await env.objects({"type": "host"})
        assert sorted(pif["$host"] for pif in pifs) == sorted(hosts)
        assert {(pif["vlan"], pif["device"], pif["physical"]) for pif in pifs} == {
            (42, "eth1", False)
        }

        # The same VLAN again: XAPI's PIF_VLAN_EXISTS is XO's objectAlreadyExists; no half-made
        # network is left behind.
        error = await _error(
            env, "network.create", {"pool": pool_id, "name": "again", "pif": eth1["id"], "vlan": 42}
        )
        assert (error.code, error.data["objectType"]) == (16, "PIF")
        assert not await env.objects({"type": "network", "name_label": "again"})

        assert (
            await call(
                "network.set",
                {
                    "id": plain,
                    "automatic": True,
                    "defaultIsLocked": True,
                    "mtu": 1400,
                    "name_label": "lab2",
                    "name_description": "",
                    "nbd": True,
                },
            )
            is True
        )
        network = await env.object(plain)
        assert (network["automatic"], network["defaultIsLocked"], network["MTU"]) == (
            True,
            True,
            1400,
        )
        assert (network["name_label"], network["name_description"], network["nbd"]) == (
            "lab2",
            "",
            True,
        )
        await call("network.set", {"id": plain, "automatic": False, "nbd": False})
        network = await env.object(plain)
        assert (network["automatic"], network["nbd"], network["insecureNbd"]) == (
            False,
            False,
            False,
        )
        assert "automatic" not in network["other_config"]

        # Deleting a VLAN network removes its VLAN PIFs with it.
        assert await call("network.delete", {"id": tagged}) is True
        assert (await env.object(tagged)) is None
        assert all([(await env.object(pif["id"])) is None for pif in pifs])
        assert await call("network.delete", {"id": plain}) is True
        assert (await env.object(plain)) is None

        # A network with VIFs stays: XAPI's NETWORK_CONTAINS_VIF, as XO's operationFailed.
        used = next(n for n in (await env.objects({"type": "network"})).values() if n["VIFs"])
        error = await _error(env, "network.delete", {"id": used["id"]})
        assert (error.code, error.data["code"]) == (21, "NETWORK_CONTAINS_VIF")
        assert (await env.object(used["id"])) is not None

        for method, params in (
            ("network.create", {"pool": pool_id}),
            ("network.create", {"pool": pool_id, "name": "x", "mtu": 20}),
            ("network.create", {"pool": pool_id, "name": "x", "vlan": 5000}),
            ("network.create", {"pool": pool_id, "name": "x", "nbd": "yes"}),
            ("network.set", {"id": used["id"], "automatic": "true"}),
            ("network.set", {"id": used["id"], "bogus": 1}),
            ("network.delete", {}),
        ):
            assert (await _error(env, method, params)).code == 10, params
        error = await _error(env, "network.create", {"pool": used["id"], "name": "x"})
        assert (error.code, error.data["type"]) == (1, "pool")


async def test_bonded_network(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        call = env.client.call
        pool_id = await _pool_id(env)
        assert await call("network.getBondModes", {}) == ["balance-slb", "active-backup", "lacp"]
        eth0, eth1 = await _master_pif(env, "eth0"), await _master_pif(env, "eth1")

        record = await call(
            "network.createBonded",
            {
                "pool": pool_id,
                "name": "bond0",
                "pifs": [eth0["id"], eth1["id"]],
                "bondMode": "active-backup",
            },
        )
        # The XAPI record of the network, as xo-server answers (clients read its uuid).
        network_id = record["uuid"]
        assert record["name_label"] == "bond0" and record["PIFs"][0].startswith("OpaqueRef:")
        network = await env.object(network_id)
        assert network["isBonded"] is True
        hosts = await env.objects({"type": "host"})
        bonds = await env.objects({"type": "bond"})
        assert len(bonds) == len(hosts) == len(network["PIFs"])
        for bond in bonds.values():
            assert bond["mode"] == "active-backup" and bond["$pool"] == pool_id
            master = await env.object(bond["master"])
            assert master["isBondMaster"] is True and master["$network"] == network_id
            slaves = [(await env.object(slave)) for slave in bond["slaves"]]
            assert sorted(s["device"] for s in slaves) == ["eth0", "eth1"]
            assert all(s["isBondSlave"] and s["$host"] == master["$host"] for s in slaves)
            assert bond["primarySlave"] in bond["slaves"]
        assert (await env.object(eth1["$network"]))["isBonded"] is False

        # A PIF already in a bond cannot join another.
        error = await _error(
            env,
            "network.createBonded",
            {"pool": pool_id, "name": "b2", "pifs": [eth0["id"], eth1["id"]], "bondMode": "lacp"},
        )
        assert (error.code, error.data["code"]) == (21, "PIF_ALREADY_BONDED")
        assert not await env.objects({"type": "network", "name_label": "b2"})

        # Deleting the network destroys its bonds first.
        assert await call("network.delete", {"id": network_id}) is True
        assert (await env.object(network_id)) is None
        assert not await env.objects({"type": "bond"})
        assert (await env.object(eth0["id"]))["isBondSlave"] is False
        assert (await env.object(eth0["id"]))["management"] is True  # given back to eth0

        for params in (
            {"pool": pool_id, "name": "b", "pifs": [eth0["id"]], "bondMode": "fast"},
            {"pool": pool_id, "name": "b", "pifs": eth0["id"], "bondMode": "lacp"},
            {"pool": pool_id, "name": "b", "bondMode": "lacp"},
        ):
            assert (await _error(env, "network.createBonded", params)).code == 10, params


async def test_pif_actions(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        call = env.client.call
        pool_id = await _pool_id(env)
        eth0, eth1 = await _master_pif(env, "eth0"), await _master_pif(env, "eth1")
        assert await call("pif.getIpv4ConfigurationModes", {}) == ["None", "DHCP", "Static"]
        assert await call("pif.getIpv6ConfigurationModes", {}) == [
            "None",
            "DHCP",
            "Static",
            "Autoconf",
        ]

        params = {
            "id": eth1["id"],
            "mode": "Static",
            "ip": "10.9.8.7",
            "netmask": "255.255.255.0",
            "gateway": "10.9.8.1",
            "dns": "10.9.8.53",
        }
        assert await call("pif.reconfigureIp", params) is True
        pif = await env.object(eth1["id"])
        assert (pif["mode"], pif["ip"], pif["netmask"], pif["gateway"], pif["dns"]) == (
            "Static",
            "10.9.8.7",
            "255.255.255.0",
            "10.9.8.1",
            "10.9.8.53",
        )
        await call("pif.reconfigureIp", {"id": eth1["id"], "ipv6": "fd00::7/64"})
        pif = await env.object(eth1["id"])
        assert (pif["ipv6Mode"], pif["ipv6"], pif["mode"]) == ("Static", ["fd00::7/64"], "Static")
        await call("pif.reconfigureIp", {"id": eth1["id"], "mode": "None", "ipv6Mode": "None"})
        pif = await env.object(eth1["id"])
        assert (pif["mode"], pif["ip"], pif["ipv6Mode"], pif["ipv6"]) == ("None", "", "None", [])
        error = await _error(env, "pif.reconfigureIp", {**params, "ip": "10.9.8.300"})
        assert (error.code, error.data["errors"][0]["instancePath"]) == (10, "/IP")

        assert await call("pif.disconnect", {"id": eth1["id"]}) is True
        assert (await env.object(eth1["id"]))["attached"] is False
        assert await call("pif.connect", {"id": eth1["id"]}) is True
        assert (await env.object(eth1["id"]))["attached"] is True
        error = await _error(env, "pif.disconnect", {"id": eth0["id"]})
        assert (error.code, error.data["code"]) == (21, "PIF_IS_MANAGEMENT_INTERFACE")
        assert (await env.object(eth0["id"]))["attached"] is True

        # A VLAN's tag changes on every host; a VLAN PIF can be forgotten.
        network_id = await call(
            "network.create", {"pool": pool_id, "name": "v10", "pif": eth1["id"], "vlan": 10}
        )
        vlan_pif = (await env.object(network_id))["PIFs"][0]
        assert await call("pif.editPif", {"id": vlan_pif, "vlan": "11"}) is True
        pifs = [(await env.object(pif_id)) for pif_id in (await env.object(network_id))["PIFs"]]
        assert len(pifs) == 2 and {pif["vlan"] for pif in pifs} == {11}
        assert (await env.object(vlan_pif)) is None
        assert await call("pif.delete", {"id": pifs[0]["id"]}) is True
        assert (await env.object(pifs[0]["id"])) is None
        assert (await env.object(network_id))["PIFs"] == [pifs[1]["id"]]
        error = await _error(env, "pif.editPif", {"id": eth1["id"], "vlan": 12})
        assert (error.code, error.data["errors"][0]["message"]) == (10, "this PIF is not a VLAN")

        for method, bad in (
            ("pif.reconfigureIp", {"id": eth1["id"], "mode": "Manual"}),
            ("pif.reconfigureIp", {"mode": "DHCP"}),
            ("pif.editPif", {"id": eth1["id"], "vlan": "ten"}),
            ("pif.connect", {"id": eth1["id"], "x": 1}),
        ):
            assert (await _error(env, method, bad)).code == 10, bad
        assert (await _error(env, "pif.delete", {"id": network_id})).code == 1
