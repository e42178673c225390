"""The official `XenAPI` package drives what VM creation needs from the simulator: VM.provision,
memory limits, placement checks, device slots, CD drives, hot-plug, VM setters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import XenAPI

from tests.sim.conftest import xenapi_login
from xod.sim.simulator import Simulator

GiB = 2**30


def _failure(call: Callable[[], Any]) -> list[str]:
    with pytest.raises(XenAPI.Failure) as raised:
        call()
    return list(raised.value.details)


def _task_status(api: Any, task: str) -> str:
    """The status of an Async call's task once it ended (bounded: 10 s)."""
    deadline = time.monotonic() + 10
    while (status := api.task.get_status(task)) == "pending":
        assert time.monotonic() < deadline, f"task {task} still pending after 10 s"
        time.sleep(0.01)
    return str(status)


def _template(api: Any) -> str:
    return next(
        str(ref)
        for ref, r in api.VM.get_all_records().items()
        if r["is_a_template"] and not r["is_a_snapshot"]
    )


def _vm_in(api: Any, state: str) -> str:
    return next(
        str(ref)
        for ref, r in api.VM.get_all_records().items()
        if r["power_state"] == state and not r["is_a_template"] and not r["is_control_domain"]
    )


async def test_provision_makes_a_vm_with_the_recipe_disks(sim: Simulator) -> None:
    def scenario() -> None:
        api = xenapi_login(sim.master_url, sim).xenapi
        template = _template(api)
        (sr,) = api.SR.get_by_name_label("NFS storage")
        sr_uuid = api.SR.get_uuid(sr)
        recipe = (
            f'<provision><disk device="0" size="{8 * GiB}" sr="{sr_uuid}" bootable="true"'
            ' type="system"/></provision>'
        )
        api.VM.add_to_other_config(template, "disks", recipe)
        vm = api.VM.clone(template, "from-template")
        assert api.VM.get_is_a_template(vm) is True
        api.VM.provision(vm)
        record = api.VM.get_record(vm)
        assert record["is_a_template"] is False and "default_template" not in record["other_config"]
        (vbd,) = record["VBDs"]
        vbd_record = api.VBD.get_record(vbd)
        assert (vbd_record["userdevice"], vbd_record["bootable"]) == ("0", True)
        vdi = api.VDI.get_record(vbd_record["VDI"])
        assert (vdi["SR"], vdi["virtual_size"]) == (sr, str(8 * GiB))
        # A VM is not provisioned twice from a running state.
        running = _vm_in(api, "Running")
        assert _failure(lambda: api.VM.provision(running))[0] == "VM_BAD_POWER_STATE"

    await asyncio.to_thread(scenario)


async def test_memory_limits(sim: Simulator) -> None:
    def scenario() -> None:
        api = xenapi_login(sim.master_url, sim).xenapi
        vm = _vm_in(api, "Halted")
        api.VM.set_memory_limits(vm, str(GiB), str(4 * GiB), str(2 * GiB), str(3 * GiB))
        record = api.VM.get_record(vm)
        assert [record[f"memory_{k}"] for k in ("static_min", "dynamic_min", "dynamic_max")] == [
            str(GiB),
            str(2 * GiB),
            str(3 * GiB),
        ]
        assert record["memory_static_max"] == str(4 * GiB)
        violation = _failure(
            lambda: api.VM.set_memory_limits(vm, str(GiB), str(GiB), str(2 * GiB), str(2 * GiB))
        )
        assert violation[0] == "MEMORY_CONSTRAINT_VIOLATION"
        api.VM.set_memory_static_max(vm, str(8 * GiB))
        api.VM.set_memory_static_min(vm, str(GiB // 2))
        api.VM.set_memory_dynamic_max(vm, str(6 * GiB))
        api.VM.set_memory_dynamic_min(vm, str(GiB))
        record = api.VM.get_record(vm)
        assert (record["memory_static_max"], record["memory_dynamic_max"]) == (
            str(8 * GiB),
            str(6 * GiB),
        )
        assert (record["memory_static_min"], record["memory_dynamic_min"]) == (
            str(GiB // 2),
            str(GiB),
        )
        running = _vm_in(api, "Running")
        static_max = int(api.VM.get_memory_static_max(running))
        api.VM.set_memory_dynamic_range(running, str(static_max // 2), str(static_max))
        assert api.VM.get_memory_dynamic_min(running) == str(static_max // 2)
        refused = _failure(lambda: api.VM.set_memory_static_max(running, str(2 * static_max)))
        assert refused[:2] == ["VM_BAD_POWER_STATE", running]
        too_big = _failure(
            lambda: api.VM.set_memory_dynamic_range(running, str(GiB), str(2 * static_max))
        )
        assert too_big[0] == "MEMORY_CONSTRAINT_VIOLATION"

    await asyncio.to_thread(scenario)


async def test_placement_checks(sim: Simulator) -> None:
    def scenario() -> None:
        session = xenapi_login(sim.master_url, sim)
        api = session.xenapi
        vm = _vm_in(api, "Halted")
        hosts = api.host.get_all()
        assert sorted(api.VM.get_possible_hosts(vm)) == sorted(
            h
            for h in hosts
            if all(
                api.PBD.get_host(pbd) == h
                for vbd in api.VM.get_VBDs(vm)
                for pbd in api.SR.get_PBDs(api.VDI.get_SR(api.VBD.get_VDI(vbd)))
                if not api.SR.get_shared(api.VDI.get_SR(api.VBD.get_VDI(vbd)))
            )
        )
        host = api.VM.get_possible_hosts(vm)[0]
        api.VM.assert_can_boot_here(vm, host)
        assert _task_status(api, api.Async.VM.assert_can_boot_here(vm, host)) == "success"
        api.host.disable(host)
        assert _failure(lambda: api.VM.assert_can_boot_here(vm, host)) == ["HOST_DISABLED", host]
        assert host not in api.VM.get_possible_hosts(vm)
        api.host.enable(host)
        template = _template(api)
        assert _failure(lambda: api.VM.assert_can_boot_here(template, host))[0] == (
            "VM_IS_TEMPLATE"
        )
        assert api.VM.get_possible_hosts(template) == []
        api.VM.set_memory_limits(vm, str(GiB), str(1024 * GiB), str(1024 * GiB), str(1024 * GiB))
        assert _failure(lambda: api.VM.assert_can_boot_here(vm, host))[0] == (
            "HOST_NOT_ENOUGH_FREE_MEMORY"
        )

    await asyncio.to_thread(scenario)


async def test_device_slots_cd_drive_and_plug(sim: Simulator) -> None:
    def scenario() -> None:
        session = xenapi_login(sim.master_url, sim)
        api = session.xenapi
        vm = _vm_in(api, "Halted")
        used = {api.VBD.get_userdevice(vbd) for vbd in api.VM.get_VBDs(vm)}
        slots = api.VM.get_allowed_VBD_devices(vm)
        assert set(slots) == {str(n) for n in range(16)} - used
        vif_slots = api.VM.get_allowed_VIF_devices(vm)
        assert "0" not in vif_slots and "1" in vif_slots
        (iso_sr,) = api.SR.get_by_name_label("ISO library")
        iso = api.VDI.create(
            {
                "name_label": "debian.iso",
                "SR": iso_sr,
                "virtual_size": str(GiB),
                "type": "user",
                "sharable": False,
                "read_only": True,
                "other_config": {},
                "sm_config": {"type": "raw"},
            }
        )
        assert api.VDI.get_sm_config(iso) == {"type": "raw"}
        cd = api.VBD.create(
            {
                "VM": vm,
                "VDI": "OpaqueRef:NULL",
                "userdevice": "3",
                "bootable": False,
                "mode": "RO",
                "type": "CD",
                "empty": True,
                "other_config": {},
                "qos_algorithm_type": "",
                "qos_algorithm_params": {},
            }
        )
        assert "3" not in api.VM.get_allowed_VBD_devices(vm)
        assert _failure(lambda: api.VBD.eject(cd)) == ["VBD_IS_EMPTY", cd]
        api.VBD.insert(cd, iso)
        assert (api.VBD.get_VDI(cd), api.VBD.get_empty(cd)) == (iso, False)
        assert _failure(lambda: api.VBD.insert(cd, iso)) == ["VBD_NOT_EMPTY", cd]
        api.VBD.eject(cd)
        assert (api.VBD.get_VDI(cd), api.VBD.get_empty(cd)) == ("OpaqueRef:NULL", True)
        disk = next(vbd for vbd in api.VM.get_VBDs(vm) if vbd != cd)
        assert _failure(lambda: api.VBD.insert(disk, iso)) == ["VBD_NOT_REMOVABLE_MEDIA", disk]
        # Hot-plug needs a running VM.
        assert _failure(lambda: api.VBD.plug(cd))[0] == "VM_BAD_POWER_STATE"
        running = _vm_in(api, "Running")
        network = api.network.get_all()[0]
        vif = api.VIF.create(
            {
                "device": api.VM.get_allowed_VIF_devices(running)[0],
                "network": network,
                "VM": running,
                "MAC": "",
                "MTU": "1500",
                "other_config": {},
                "qos_algorithm_type": "",
                "qos_algorithm_params": {},
            }
        )
        record = api.VIF.get_record(vif)
        assert record["MAC_autogenerated"] is True and len(record["MAC"].split(":")) == 6
        assert _task_status(api, api.Async.VIF.plug(vif)) == "success"
        assert api.VIF.get_currently_attached(vif) is True
        assert _failure(lambda: api.VIF.plug(vif)) == ["DEVICE_ALREADY_ATTACHED", vif]
        # A slot already used: refused, and no second device left behind.
        taken = {**api.VIF.get_record(vif), "MAC": ""}
        vifs = api.VM.get_VIFs(running)
        assert _failure(lambda: api.VIF.create(taken)) == ["DEVICE_ALREADY_EXISTS", taken["device"]]
        assert api.VM.get_VIFs(running) == vifs

    await asyncio.to_thread(scenario)


async def test_vm_setters_and_cores_per_socket(sim: Simulator) -> None:
    def scenario() -> None:
        api = xenapi_login(sim.master_url, sim).xenapi
        vm = _vm_in(api, "Halted")
        record = api.VM.get_record(vm)
        assert record["platform"]["cores-per-socket"] == record["VCPUs_max"]
        api.VM.set_start_delay(vm, "30")
        api.VM.set_has_vendor_device(vm, True)
        api.VM.set_domain_type(vm, "pv")
        record = api.VM.get_record(vm)
        assert (record["start_delay"], record["has_vendor_device"], record["domain_type"]) == (
            "30",
            True,
            "pv",
        )
        running = _vm_in(api, "Running")
        assert _failure(lambda: api.VM.set_domain_type(running, "hvm"))[0] == "VM_BAD_POWER_STATE"

    await asyncio.to_thread(scenario)


async def test_xscontainer_config_drive_default(sim: Simulator) -> None:
    def scenario() -> None:
        api = xenapi_login(sim.master_url, sim).xenapi
        template = _template(api)
        host = api.pool.get_master(api.pool.get_all()[0])
        args = {"templateuuid": api.VM.get_uuid(template)}
        answer = api.host.call_plugin(host, "xscontainer", "get_config_drive_default", args)
        assert answer.startswith("True#cloud-config\n")
        unknown = {"templateuuid": "00000000-0000-0000-0000-000000000000"}
        failure = _failure(
            lambda: api.host.call_plugin(host, "xscontainer", "get_config_drive_default", unknown)
        )
        assert failure[0] == "XENAPI_PLUGIN_FAILURE"
        # Other plugins still reach the handler registered before.
        assert api.host.call_plugin(host, "echo", "main", {}) == ""

    await asyncio.to_thread(scenario)
