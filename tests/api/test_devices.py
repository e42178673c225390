"""vif.*, vbd.*, disk.create, vdi.set/migrate/delete and sr.scan through xod's JSON-RPC API
against the simulator: each effect is in the cache when the call returns (read straight from
the store), XAPI refusals arrive as XO codes, invalid params as code 10."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.harness import RpcError
from tests.api.test_commands_support import Env, commands_env

GiB = 1024**3


async def _error(env: Env, method: str, params: dict) -> RpcError:
    with pytest.raises(RpcError) as raised:
        await env.client.call(method, params)
    return raised.value


async def _devices(env: Env, vm: dict, field: str) -> list[dict]:
    return [await env.object(device_id) for device_id in vm[field]]  # type: ignore[misc]


async def test_vif_connect_disconnect_set_delete(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = await env.vm_in_state("Running")
        vif_id = vm["VIFs"][0]
        call = env.client.call

        assert await call("vif.disconnect", {"id": vif_id}) is True
        assert (await env.object(vif_id))["attached"] is False
        error = await _error(env, "vif.disconnect", {"id": vif_id})
        assert (error.code, error.data["property"], error.data["object"]) == (
            25,
            "attached",
            vif_id,
        )
        assert await call("vif.connect", {"id": vif_id}) is True
        assert (await env.object(vif_id))["attached"] is True
        error = await _error(env, "vif.connect", {"id": vif_id})
        assert (error.code, error.data["actual"]) == (25, True)

        # Settings kept in place: the id stays.
        result = await call(
            "vif.set",
            {
                "id": vif_id,
                "lockingMode": "locked",
                "allowedIpv4Addresses": ["10.0.0.8"],
                "allowedIpv6Addresses": ["fd00::8"],
                "rateLimit": 1024,
                "txChecksumming": False,
            },
        )
        assert result == vif_id
        vif = await env.object(vif_id)
        assert vif["lockingMode"] == "locked"
        assert (vif["allowedIpv4Addresses"], vif["allowedIpv6Addresses"]) == (
            ["10.0.0.8"],
            ["fd00::8"],
        )
        assert (vif["rateLimit"], vif["txChecksumming"]) == (1024, False)
        await call("vif.set", {"id": vif_id, "rateLimit": None, "txChecksumming": True})
        vif = await env.object(vif_id)
        assert vif is not None
        assert "rateLimit" not in vif or vif["rateLimit"] is None
        assert vif["txChecksumming"] is True

        # Another network: the VIF moves (same id); the network lists it.
        networks = await env.objects({"type": "network"})
        other = next(n for n in sorted(networks) if n != vif["$network"])
        assert await call("vif.set", {"id": vif_id, "network": other}) == vif_id
        assert (await env.object(vif_id))["$network"] == other
        assert vif_id in (await env.object(other))["VIFs"]

        # A new MAC: a new VIF on the same device, with the same settings, still attached.
        new_id = await call("vif.set", {"id": vif_id, "mac": "02:00:00:00:00:42"})
        assert new_id != vif_id and (await env.object(vif_id)) is None
        new = await env.object(new_id)
        assert (new["MAC"], new["device"], new["$VM"], new["$network"]) == (
            "02:00:00:00:00:42",
            vif["device"],
            vm["id"],
            other,
        )
        assert new["lockingMode"] == "locked" and new["attached"] is True
        assert new_id in (await env.object(vm["id"]))["VIFs"]

        assert await call("vif.delete", {"id": new_id}) is True
        assert (await env.object(new_id)) is None
        assert new_id not in (await env.object(vm["id"]))["VIFs"]

        # A halted VM's VIF cannot be plugged: XAPI's VM_BAD_POWER_STATE is XO's 13.
        halted = await env.vm_in_state("Halted")
        error = await _error(env, "vif.connect", {"id": halted["VIFs"][0]})
        assert (error.code, error.data["expected"]) == (13, "running")

        # Invalid params and unknown objects.
        assert await call("vif.getLockingModeValues", {}) == [
            "network_default",
            "locked",
            "unlocked",
            "disabled",
        ]
        for params in (
            {"id": halted["VIFs"][0], "lockingMode": "sometimes"},
            {"id": halted["VIFs"][0], "rateLimit": "fast"},
            {"id": halted["VIFs"][0], "allowedIpv4Addresses": "10.0.0.1"},
            {"id": halted["VIFs"][0], "resourceSet": "x"},
        ):
            assert (await _error(env, "vif.set", params)).code == 10, params
        assert (await _error(env, "vif.delete", {"id": vm["id"]})).code == 1
        error = await _error(env, "vif.set", {"id": halted["VIFs"][0], "network": vm["id"]})
        assert (error.code, error.data["type"]) == (1, "network")


async def test_vbd_connect_disconnect_set_delete(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = await env.vm_in_state("Running")
        vbd = next(v for v in await _devices(env, vm, "$VBDs") if not v["is_cd_drive"])
        vbd_id = vbd["id"]
        call = env.client.call

        assert await call("vbd.disconnect", {"id": vbd_id}) is True
        assert (await env.object(vbd_id))["attached"] is False
        assert (await _error(env, "vbd.disconnect", {"id": vbd_id})).code == 25
        assert await call("vbd.connect", {"id": vbd_id}) is True
        assert (await env.object(vbd_id))["attached"] is True
        assert (await _error(env, "vbd.connect", {"id": vbd_id})).code == 25

        # A VBD xapi calls not unpluggable is made unpluggable, then unplugged (as XO does).
        record = env.sim_record("VBD", vbd_id)
        env.sim.pool.db.update(
            "VBD", env.sim.pool.db.by_uuid("VBD", vbd_id), {"unpluggable": False}
        )
        assert await call("vbd.disconnect", {"id": vbd_id}) is True
        assert (await env.object(vbd_id))["attached"] is False
        assert env.sim_record("VBD", vbd_id)["unpluggable"] is True

        assert await call("vbd.set", {"id": vbd_id, "position": 7}) is True
        assert (await env.object(vbd_id))["position"] == "7"
        assert await call("vbd.setBootable", {"vbd": vbd_id, "bootable": False}) is True
        assert (await env.object(vbd_id))["bootable"] is False

        await call("vbd.connect", {"id": vbd_id})
        vdi_id = (await env.object(vbd_id))["VDI"]
        assert await call("vbd.delete", {"id": vbd_id}) is True  # unplugged first
        assert (await env.object(vbd_id)) is None
        assert vbd_id not in (await env.object(vm["id"]))["$VBDs"]
        assert (await env.object(vdi_id)) is not None and record["VDI"]  # the disk stays

        for method, params in (
            ("vbd.set", {"id": vm["$VBDs"][0], "position": True}),
            ("vbd.setBootable", {"vbd": vm["$VBDs"][0]}),
            ("vbd.connect", {"id": vm["$VBDs"][0], "force": True}),
        ):
            assert (await _error(env, method, params)).code == 10, method
        assert (await _error(env, "vbd.connect", {"id": vdi_id})).code == 1


async def test_disk_create_resize_migrate_delete(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        call = env.client.call
        srs = await env.objects({"type": "SR", "content_type": "user"})
        shared = next(sr for sr in srs.values() if sr["shared"])
        halted = await env.vm_in_state("Halted")
        running = await env.vm_in_state("Running")

        # A disk alone, then disks attached to a halted and a running VM.
        lone = await call("disk.create", {"name": "scratch", "size": "2GiB", "sr": shared["id"]})
        vdi = await env.object(lone)
        assert vdi["type"] == "VDI"
        assert (vdi["name_label"], vdi["size"], vdi["$SR"], vdi["$VBDs"]) == (
            "scratch",
            2 * GiB,
            shared["id"],
            [],
        )
        data = await call(
            "disk.create", {"name": "data", "size": GiB, "sr": shared["id"], "vm": halted["id"]}
        )
        [vbd_id] = (await env.object(data))["$VBDs"]
        vbd = await env.object(vbd_id)
        assert (vbd["VM"], vbd["attached"], vbd["read_only"], vbd["bootable"]) == (
            halted["id"],
            False,
            False,
            False,
        )
        used = {(await env.object(v))["position"] for v in halted["$VBDs"]}
        assert vbd["position"] not in used | {"3"}
        live = await call(
            "disk.create",
            {
                "name": "live",
                "size": 1000000000,
                "sr": shared["id"],
                "vm": running["id"],
                "position": "5",
                "mode": "RO",
                "bootable": True,
            },
        )
        live_vbd = await env.object((await env.object(live))["$VBDs"][0])
        assert (live_vbd["position"], live_vbd["attached"], live_vbd["read_only"]) == (
            "5",
            True,
            True,
        )
        assert live_vbd["bootable"] is True

        # Bigger only: XO's "cannot set new size" is an invalid parameter.
        assert await call("vdi.set", {"id": data, "size": "2GiB", "name_label": "data2"}) is True
        assert ((await env.object(data))["size"], (await env.object(data))["name_label"]) == (
            2 * GiB,
            "data2",
        )
        error = await _error(env, "vdi.set", {"id": data, "size": GiB})
        assert error.code == 10
        assert "below the current size" in error.data["errors"][0]["message"]

        # The SR has no room: XAPI's SR_FULL is XO's operationFailed with the code.
        free = env.sim_record("SR", shared["id"])["physical_size"]
        error = await _error(env, "disk.create", {"name": "huge", "size": free, "sr": shared["id"]})
        assert (error.code, error.data["code"]) == (21, "SR_FULL")
        assert env.sim_count("VDI", name_label="huge") == 0
        error = await _error(env, "vdi.set", {"id": data, "size": free})
        assert (error.code, error.data["code"], error.data["objectId"]) == (21, "SR_FULL", data)
        assert (await env.object(data))["size"] == 2 * GiB

        # Migration: a halted VM's disk is copied; a running VM's moves live. Not into an SR
        # without room for it.
        local = next(sr for sr in srs.values() if not sr["shared"])
        db = env.sim.pool.db
        local_ref = db.by_uuid("SR", local["id"])
        room = db.get("SR", local_ref)["virtual_allocation"]
        db.update("SR", local_ref, {"virtual_allocation": db.get("SR", local_ref)["physical_size"]})
        error = await _error(env, "vdi.migrate", {"id": data, "sr_id": local["id"]})
        assert (error.code, error.data["code"]) == (21, "SR_FULL")
        assert (await env.object(data))["$SR"] == shared["id"]
        db.update("SR", local_ref, {"virtual_allocation": room})
        assert await call("vdi.migrate", {"id": data, "sr_id": local["id"]}) is True
        assert (await env.object(data)) is None
        assert (await env.object(vbd_id)) is None  # its VBD was made again on the copy
        [new_vbd] = [
            v
            for v in await _devices(env, await env.object(halted["id"]) or {}, "$VBDs")
            if v["position"] == vbd["position"]
        ]
        moved = await env.object(new_vbd["VDI"])
        assert (moved["$SR"], moved["name_label"], moved["size"]) == (local["id"], "data2", 2 * GiB)
        assert await call("vdi.migrate", {"id": live, "sr_id": local["id"]}) is True
        live_now = await env.object((await env.object(live_vbd["id"]))["VDI"])
        assert live_now["$SR"] == local["id"] and live_now["name_label"] == "live"

        assert await call("vdi.delete", {"id": lone}) is True
        assert (await env.object(lone)) is None
        error = await _error(env, "vdi.delete", {"id": live_now["id"]})
        assert (error.code, error.data["objectId"]) == (17, live_now["id"])  # VDI_IN_USE

        for method, params in (
            ("disk.create", {"name": "x", "size": "lots", "sr": shared["id"]}),
            ("disk.create", {"name": "x", "size": -1, "sr": shared["id"]}),
            ("disk.create", {"name": "x", "size": 1, "sr": shared["id"], "mode": "RX"}),
            ("disk.create", {"name": "", "size": 1, "sr": shared["id"]}),
            ("vdi.set", {"id": moved["id"], "size": True}),
            ("vdi.migrate", {"id": moved["id"]}),
        ):
            assert (await _error(env, method, params)).code == 10, params
        error = await _error(env, "disk.create", {"name": "x", "size": 1, "sr": halted["id"]})
        assert (error.code, error.data["type"]) == (1, "SR")


async def test_sr_scan(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        srs = await env.objects({"type": "SR", "content_type": "user"})
        sr = next(sr for sr in srs.values() if sr["shared"])
        db = env.sim.pool.db
        sr_ref = db.by_uuid("SR", sr["id"])
        expected = sum(
            r["physical_utilisation"] for r in db.tables["VDI"].values() if r["SR"] == sr_ref
        )
        assert expected != sr["physical_usage"]
        assert await env.client.call("sr.scan", {"id": sr["id"]}) is True
        assert (await env.object(sr["id"]))["physical_usage"] == expected
        assert (await _error(env, "sr.scan", {"id": sr["id"], "force": True})).code == 10
        assert (await _error(env, "sr.scan", {"id": "nope"})).code == 1
