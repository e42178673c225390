"""The official `XenAPI` package drives the simulator's device, storage, network and pool calls
(xod/sim/lifecycle/devices.py, networking.py, pool_admin.py): each call's effect on the records,
and xapi's refusals as XenAPI.Failure."""

from __future__ import annotations

import asyncio
import calendar
import json
import time
from typing import Any

import pytest
import XenAPI

from tests.sim.conftest import xenapi_login
from xod.sim.simulator import Simulator

GiB = 1024**3


def _failure(code: str, call: Any, *args: Any) -> list[str]:
    with pytest.raises(XenAPI.Failure) as raised:
        call(*args)
    assert raised.value.details[0] == code, raised.value.details
    return raised.value.details


def _vm_in_state(api: Any, state: str) -> str:
    return next(
        ref
        for ref, r in api.VM.get_all_records().items()
        if r["power_state"] == state
        and not r["is_a_template"]
        and not r["is_control_domain"]
        and not r["is_a_snapshot"]
        and r["VIFs"]
        and r["VBDs"]
    )


async def test_vif_and_vbd_plugging(sim: Simulator) -> None:
    def scenario() -> None:
        api = xenapi_login(sim.master_url, sim).xenapi
        running = _vm_in_state(api, "Running")
        halted = _vm_in_state(api, "Halted")
        vif = api.VM.get_VIFs(running)[0]
        assert api.VIF.get_currently_attached(vif) is True
        api.VIF.unplug(vif)
        assert api.VIF.get_currently_attached(vif) is False
        _failure("DEVICE_ALREADY_DETACHED", api.VIF.unplug_force, vif)
        api.Async.VIF.plug(vif)  # Async works too; the task ends quickly
        _failure("VM_BAD_POWER_STATE", api.VIF.plug, api.VM.get_VIFs(halted)[0])
        _failure("OPERATION_NOT_ALLOWED", api.VIF.destroy, vif)

        networks = api.network.get_all()
        other = next(n for n in networks if n != api.VIF.get_network(vif))
        api.VIF.move(vif, other)
        assert api.VIF.get_network(vif) == other
        assert vif in api.network.get_VIFs(other)
        api.VIF.set_locking_mode(vif, "locked")
        api.VIF.set_ipv4_allowed(vif, ["10.0.0.7"])
        api.VIF.set_ipv6_allowed(vif, ["fd00::7"])
        record = api.VIF.get_record(vif)
        assert (record["locking_mode"], record["ipv4_allowed"], record["ipv6_allowed"]) == (
            "locked",
            ["10.0.0.7"],
            ["fd00::7"],
        )
        api.VIF.unplug_force(vif)
        api.VIF.destroy(vif)
        assert vif not in api.VM.get_VIFs(running)

        vbd = api.VM.get_VBDs(running)[0]
        api.VBD.set_unpluggable(vbd, False)
        _failure("VBD_NOT_UNPLUGGABLE", api.VBD.unplug_force, vbd)
        api.VBD.set_unpluggable(vbd, True)
        api.VBD.unplug(vbd)
        _failure("DEVICE_ALREADY_DETACHED", api.VBD.unplug, vbd)
        api.VBD.plug(vbd)
        _failure("DEVICE_ALREADY_ATTACHED", api.VBD.plug, vbd)
        api.VBD.unplug(vbd)
        api.VBD.destroy(vbd)
        assert vbd not in api.VM.get_VBDs(running)

    await asyncio.to_thread(scenario)


async def test_vdi_resize_snapshot_copy_migrate_and_sr_scan(sim: Simulator) -> None:
    def scenario() -> None:
        api = xenapi_login(sim.master_url, sim).xenapi
        running = _vm_in_state(api, "Running")
        halted = _vm_in_state(api, "Halted")
        vdi = api.VBD.get_VDI(api.VM.get_VBDs(halted)[0])
        size = int(api.VDI.get_virtual_size(vdi))
        sr = api.VDI.get_SR(vdi)
        allocation = int(api.SR.get_virtual_allocation(sr))
        api.VDI.resize(vdi, str(size + GiB))
        assert int(api.VDI.get_virtual_size(vdi)) == size + GiB
        assert int(api.SR.get_virtual_allocation(sr)) == allocation + GiB
        _failure("VDI_TOO_SMALL", api.VDI.resize, vdi, str(size))
        free = int(api.SR.get_physical_size(sr)) - int(api.SR.get_virtual_allocation(sr))
        _failure("SR_FULL", api.VDI.resize, vdi, str(size + GiB + free + 1))

        created = api.VDI.create(
            {
                "name_label": "new",
                "SR": sr,
                "virtual_size": str(GiB),
                "type": "user",
                "sharable": False,
                "read_only": False,
                "other_config": {},
            }
        )
        assert api.VDI.get_managed(created) is True
        assert int(api.SR.get_virtual_allocation(sr)) == allocation + 2 * GiB
        vbd = api.VBD.create(
            {
                "VM": halted,
                "VDI": created,
                "userdevice": "9",
                "bootable": False,
                "mode": "RW",
                "type": "Disk",
                "empty": False,
                "other_config": {},
                "qos_algorithm_type": "",
                "qos_algorithm_params": {},
            }
        )
        api.VDI.destroy(created)
        _failure("HANDLE_INVALID", api.VBD.get_record, vbd)
        assert int(api.SR.get_virtual_allocation(sr)) == allocation + GiB
        too_big = {"name_label": "big", "SR": sr, "virtual_size": str(free + GiB), "type": "user"}
        too_big.update(sharable=False, read_only=False, other_config={})
        _failure("SR_FULL", api.VDI.create, too_big)
        assert not api.VDI.get_by_name_label("big")

        snapshot = api.VDI.snapshot(vdi, {})
        assert api.VDI.get_is_a_snapshot(snapshot) is True
        assert api.VDI.get_snapshot_of(snapshot) == vdi
        assert snapshot in api.VDI.get_snapshots(vdi)

        other_sr = next(
            ref
            for ref, r in api.SR.get_all_records().items()
            if r["content_type"] == "user" and ref != sr
        )
        copy = api.VDI.copy(vdi, other_sr)
        assert api.VDI.get_SR(copy) == other_sr
        _failure("VDI_NEEDS_VM_FOR_MIGRATE", api.VDI.pool_migrate, vdi, other_sr, {})

        live_vbd = api.VM.get_VBDs(running)[0]
        live_vdi = api.VBD.get_VDI(live_vbd)
        target = next(ref for ref in (sr, other_sr) if ref != api.VDI.get_SR(live_vdi))
        moved = api.VDI.pool_migrate(live_vdi, target, {})
        assert moved != live_vdi and api.VDI.get_SR(moved) == target
        assert api.VBD.get_VDI(live_vbd) == moved
        _failure("HANDLE_INVALID", api.VDI.get_record, live_vdi)

        api.SR.scan(sr)
        used = sum(
            int(r["physical_utilisation"])
            for r in api.VDI.get_all_records().values()
            if r["SR"] == sr
        )
        assert int(api.SR.get_physical_utilisation(sr)) == used

    await asyncio.to_thread(scenario)


async def test_networks_bonds_vlans(sim: Simulator) -> None:
    def scenario() -> None:
        api = xenapi_login(sim.master_url, sim).xenapi
        network = api.network.create(
            {"name_label": "lab", "name_description": "", "MTU": "9000", "other_config": {}}
        )
        assert api.network.get_bridge(network).startswith("xapi")
        api.network.set_default_locking_mode(network, "disabled")
        api.network.add_purpose(network, "nbd")
        assert api.network.get_purpose(network) == ["nbd"]
        api.network.remove_purpose(network, "nbd")
        assert api.network.get_default_locking_mode(network) == "disabled"

        host = sim.pool.master
        eth1 = next(
            ref
            for ref, r in api.PIF.get_all_records().items()
            if r["host"] == host and r["device"] == "eth1"
        )
        vlan = api.VLAN.create(eth1, "20", network)
        untagged = api.VLAN.get_untagged_PIF(vlan)
        assert api.PIF.get_VLAN(untagged) == "20"
        assert api.PIF.get_VLAN_master_of(untagged) == vlan
        assert vlan in api.PIF.get_VLAN_slave_of(eth1)
        _failure("PIF_VLAN_EXISTS", api.VLAN.create, eth1, "20", network)
        _failure("VLAN_TAG_INVALID", api.VLAN.create, eth1, "5000", network)
        _failure("NETWORK_CONTAINS_PIF", api.network.destroy, network)
        api.VLAN.destroy(vlan)
        assert api.network.get_PIFs(network) == []

        pifs = api.pool.create_VLAN_from_PIF(eth1, network, "30")
        assert len(pifs) == len(sim.pool.host_refs)
        assert {api.PIF.get_host(pif) for pif in pifs} == set(sim.pool.host_refs)
        for pif in pifs:
            api.PIF.forget(pif)
        api.network.destroy(network)

        bond_net = api.network.create(
            {"name_label": "bond", "name_description": "", "other_config": {}}
        )
        members = [
            ref
            for ref, r in api.PIF.get_all_records().items()
            if r["host"] == host and r["physical"]
        ]
        _failure(
            "PIF_BOND_NEEDS_MORE_MEMBERS", api.Bond.create, bond_net, members[:1], "", "lacp", {}
        )
        bond = api.Bond.create(bond_net, members, "", "active-backup", {})
        master = api.Bond.get_master(bond)
        master_record = api.PIF.get_record(master)
        assert master_record["device"].startswith("bond")
        assert master_record["bond_master_of"] == [bond]
        assert master_record["management"] is True  # eth0 was the management interface
        assert sorted(api.Bond.get_slaves(bond)) == sorted(members)
        assert api.Bond.get_mode(bond) == "active-backup"
        _failure("PIF_ALREADY_BONDED", api.Bond.create, bond_net, members, "", "lacp", {})
        _failure("PIF_IS_MANAGEMENT_INTERFACE", api.PIF.unplug, master)
        api.Bond.destroy(bond)
        assert api.PIF.get_management(members[0]) or api.PIF.get_management(members[1])
        assert all(api.PIF.get_bond_slave_of(m) == "OpaqueRef:NULL" for m in members)
        _failure("HANDLE_INVALID", api.PIF.get_record, master)

    await asyncio.to_thread(scenario)


async def test_pif_configuration(sim: Simulator) -> None:
    def scenario() -> None:
        api = xenapi_login(sim.master_url, sim).xenapi
        host = sim.pool.master
        eth1 = next(
            ref
            for ref, r in api.PIF.get_all_records().items()
            if r["host"] == host and r["device"] == "eth1"
        )
        api.PIF.reconfigure_ip(eth1, "Static", "10.1.2.3", "255.255.255.0", "10.1.2.1", "10.1.2.53")
        record = api.PIF.get_record(eth1)
        assert (record["ip_configuration_mode"], record["IP"], record["DNS"]) == (
            "Static",
            "10.1.2.3",
            "10.1.2.53",
        )
        _failure(
            "INVALID_IP_ADDRESS_SPECIFIED", api.PIF.reconfigure_ip, eth1, "Static", "x", "", "", ""
        )
        api.PIF.reconfigure_ip(eth1, "None", "", "", "", "")
        assert api.PIF.get_IP(eth1) == ""
        api.PIF.reconfigure_ipv6(eth1, "Static", "fd00::5/64", "fd00::1", "")
        assert api.PIF.get_IPv6(eth1) == ["fd00::5/64"]
        api.PIF.unplug(eth1)
        assert api.PIF.get_currently_attached(eth1) is False
        api.PIF.plug(eth1)
        assert api.PIF.get_currently_attached(eth1) is True
        management = next(r for r in api.PIF.get_all_records() if api.PIF.get_management(r))
        _failure("PIF_IS_MANAGEMENT_INTERFACE", api.PIF.forget, management)
        api.PIF.scan(host)

    await asyncio.to_thread(scenario)


async def test_pool_and_host_administration(sim: Simulator) -> None:
    def scenario() -> None:
        api = xenapi_login(sim.master_url, sim).xenapi
        master = sim.pool.master
        updates = json.loads(api.host.call_plugin(master, "updater.py", "check_update", {}))
        assert updates and {"name", "version", "release", "description"} <= updates[0].keys()
        assert api.host.get_sched_gran(master) == "cpu"
        api.host.set_iscsi_iqn(master, "iqn.2026-12.test:host1")
        api.host.set_multipathing(master, True)
        record = api.host.get_record(master)
        assert (record["iscsi_iqn"], record["multipathing"]) == ("iqn.2026-12.test:host1", True)

        _failure("OPERATION_NOT_ALLOWED", api.pool.eject, master)
        _failure("OPERATION_NOT_ALLOWED", api.host.forget, master)
        member = next(ref for ref in api.host.get_all() if ref != master)
        _failure("HOST_IS_LIVE", api.host.forget, member)
        busy = [
            vm for vm in api.host.get_resident_VMs(member) if not api.VM.get_is_control_domain(vm)
        ]
        if busy:
            _failure("HOST_IN_USE", api.pool.eject, member)
            api.host.disable(member)
            api.host.evacuate(member)
        pifs = api.host.get_PIFs(member)
        api.pool.eject(member)
        assert member not in api.host.get_all()
        assert not set(pifs) & set(api.PIF.get_all())
        assert member not in sim.pool.host_refs

    await asyncio.to_thread(scenario)

    # The last member dies: then, and only then, it can be forgotten.
    (dead,) = (ref for ref in sim.pool.host_refs if ref != sim.pool.master)
    db = sim.pool.db
    db.update("host_metrics", db.get("host", dead)["metrics"], {"live": False})

    def forget() -> None:
        api = xenapi_login(sim.master_url, sim).xenapi
        dom0 = api.host.get_control_domain(dead)
        _failure("HOST_OFFLINE", api.pool.designate_new_master, dead)
        api.host.forget(dead)
        assert api.host.get_all() == [sim.pool.master]
        _failure("HANDLE_INVALID", api.VM.get_record, dom0)

    await asyncio.to_thread(forget)


async def test_host_clock_skew(sim: Simulator) -> None:
    master = sim.pool.master
    sim.pool.clock_skew[master] = 3600.0

    def scenario() -> float:
        api = xenapi_login(sim.master_url, sim).xenapi
        stamp = api.host.get_servertime(master)
        return calendar.timegm(time.strptime(str(stamp), "%Y%m%dT%H:%M:%SZ"))

    skewed = await asyncio.to_thread(scenario)
    assert abs(skewed - (time.time() + 3600)) < 5
