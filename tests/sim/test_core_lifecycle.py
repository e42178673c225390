"""VM / host / pool lifecycle of the simulator core, and reverse-reference consistency."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from tests.sim.core_helpers import check_reverse_references, failure, login, small_pool, vms
from xod.sim.values import NULL_REF


async def test_power_cycle_of_a_vm() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master
    call = pool.call
    vm = vms(pool, "Halted")[0]
    records = pool.records("VM")
    assert "start" in records[vm]["allowed_operations"]
    assert await call("VM.start", [s, vm, False, False], host=m) == ""
    record = records[vm]
    assert record["power_state"] == "Running"
    host = record["resident_on"]
    assert host in pool.host_refs and vm in pool.records("host")[host]["resident_VMs"]
    assert record["domid"] > 0 and record["guest_metrics"] != NULL_REF
    assert pool.records("VM_metrics")[record["metrics"]]["start_time"] != "19700101T00:00:00Z"
    assert record["consoles"] and "clean_shutdown" in record["allowed_operations"]
    assert await failure(pool, "VM.start", [s, vm, False, False]) == [
        "VM_BAD_POWER_STATE",
        vm,
        "halted",
        "running",
    ]
    assert await failure(pool, "VM.destroy", [s, vm]) == [
        "VM_BAD_POWER_STATE",
        vm,
        "halted, suspended",
        "running",
    ]
    domid = record["domid"]
    await call("VM.clean_reboot", [s, vm], host=m)
    assert records[vm]["domid"] != domid and records[vm]["power_state"] == "Running"
    await call("VM.pause", [s, vm], host=m)
    assert records[vm]["power_state"] == "Paused"
    assert await failure(pool, "VM.pause", [s, vm]) == [
        "VM_BAD_POWER_STATE",
        vm,
        "running",
        "paused",
    ]
    await call("VM.unpause", [s, vm], host=m)
    await call("VM.hard_reboot", [s, vm], host=m)
    await call("VM.suspend", [s, vm], host=m)
    record = records[vm]
    assert record["power_state"] == "Suspended" and record["resident_on"] == NULL_REF
    assert record["suspend_VDI"] in pool.records("VDI")
    assert record["guest_metrics"] == NULL_REF and record["domid"] == -1
    other = next(h for h in pool.host_refs if h != host)
    await call("VM.resume_on", [s, vm, other, False, False], host=m)
    assert records[vm]["resident_on"] == other and records[vm]["suspend_VDI"] == NULL_REF
    await call("VM.pool_migrate", [s, vm, host, {"live": "true"}], host=m)
    assert records[vm]["resident_on"] == host
    assert vm not in pool.records("host")[other]["resident_VMs"]
    await call("VM.clean_shutdown", [s, vm], host=m)
    assert await failure(pool, "VM.hard_shutdown", [s, vm]) == [
        "VM_BAD_POWER_STATE",
        vm,
        "paused, suspended, running",
        "halted",
    ]
    await call("VM.start_on", [s, vm, other, True, False], host=m)
    assert records[vm]["power_state"] == "Paused" and records[vm]["resident_on"] == other
    await call("VM.hard_shutdown", [s, vm], host=m)
    await call("VM.start", [s, vm, False, False], host=m)
    await call("VM.shutdown", [s, vm], host=m)
    await call("VM.start", [s, vm, False, False], host=m)
    await call("VM.suspend", [s, vm], host=m)
    await call("VM.resume", [s, vm, False, False], host=m)
    assert records[vm]["power_state"] == "Running"
    check_reverse_references(pool)


async def test_lifecycle_errors() -> None:
    pool = small_pool()
    s = await login(pool)
    template = next(
        r for r, v in pool.records("VM").items() if v["is_a_template"] and not v["is_a_snapshot"]
    )
    assert await failure(pool, "VM.start", [s, template, False, False]) == [
        "VM_IS_TEMPLATE",
        template,
        "start",
    ]
    assert await failure(pool, "VM.start", [s, "OpaqueRef:nope", False, False]) == [
        "HANDLE_INVALID",
        "VM",
        "OpaqueRef:nope",
    ]
    vm = vms(pool, "Halted")[0]
    await pool.call(
        "VM.set_blocked_operations", [s, vm, {"start": "maintenance"}], host=pool.master
    )
    assert await failure(pool, "VM.start", [s, vm, False, False]) == [
        "OPERATION_BLOCKED",
        vm,
        "maintenance",
    ]
    await pool.call("VM.set_blocked_operations", [s, vm, {}], host=pool.master)
    for host in pool.host_refs:
        await pool.call("host.disable", [s, host], host=pool.master)
    assert await failure(pool, "VM.start", [s, vm, False, False]) == ["NO_HOSTS_AVAILABLE"]
    assert await failure(pool, "VM.start_on", [s, vm, pool.host_refs[0], False, False]) == [
        "HOST_DISABLED",
        pool.host_refs[0],
    ]


async def test_other_operation_in_progress() -> None:
    pool = small_pool(op_durations={"VM.clone": 0.3})
    s = await login(pool)
    vm = vms(pool, "Halted")[0]
    task = await pool.call("Async.VM.clone", [s, vm, "copy"], host=pool.master)
    await asyncio.sleep(0.05)
    assert pool.records("VM")[vm]["current_operations"] == {task: "clone"}
    assert pool.records("VM")[vm]["allowed_operations"] == []
    assert await failure(pool, "VM.start", [s, vm, False, False]) == [
        "OTHER_OPERATION_IN_PROGRESS",
        "VM",
        vm,
        "clone",
        task,
    ]
    for _ in range(200):
        if pool.records("task")[task]["status"] != "pending":
            break
        await asyncio.sleep(0.02)
    assert pool.records("VM")[vm]["current_operations"] == {}
    assert "start" in pool.records("VM")[vm]["allowed_operations"]


async def test_clone_copy_snapshot_revert_destroy() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master
    records = pool.records("VM")
    vm = vms(pool, "Halted")[0]
    source = records[vm]
    clone = await pool.call("VM.clone", [s, vm, "the clone"], host=m)
    record = records[clone]
    assert record["name_label"] == "the clone" and record["power_state"] == "Halted"
    assert len(record["VBDs"]) == len(source["VBDs"]) and len(record["VIFs"]) == 1
    new_vdis = {pool.records("VBD")[vbd]["VDI"] for vbd in record["VBDs"]}
    old_vdis = {pool.records("VBD")[vbd]["VDI"] for vbd in source["VBDs"]}
    assert new_vdis.isdisjoint(old_vdis) and new_vdis <= set(pool.records("VDI"))
    assert record["metrics"] in pool.records("VM_metrics")
    sr = next(r for r, v in pool.records("SR").items() if v["type"] == "lvm")
    copy = await pool.call("VM.copy", [s, vm, "the copy", sr], host=m)
    assert {
        pool.records("VDI")[pool.records("VBD")[b]["VDI"]]["SR"] for b in records[copy]["VBDs"]
    } == {sr}
    running = vms(pool, "Running")[0]
    snap = await pool.call("VM.snapshot", [s, running, "snap"], host=m)
    assert records[snap]["is_a_snapshot"] and records[snap]["snapshot_of"] == running
    assert snap in records[running]["snapshots"]
    assert records[snap]["snapshot_time"] != "19700101T00:00:00Z"
    assert await failure(pool, "VM.start", [s, snap, False, False]) == [
        "VM_IS_SNAPSHOT",
        snap,
        "start",
    ]
    checkpoint = await pool.call("VM.checkpoint", [s, running, "cp"], host=m)
    assert records[checkpoint]["power_state"] == "Suspended"
    await pool.call("VM.revert", [s, snap], host=m)
    assert records[running]["power_state"] == "Halted"
    vbds = list(records[clone]["VBDs"])
    vifs = list(records[clone]["VIFs"])
    vdis = [pool.records("VBD")[vbd]["VDI"] for vbd in vbds]
    metrics = records[clone]["metrics"]
    assert await pool.call("VM.destroy", [s, clone], host=m) == ""
    assert clone not in records and metrics not in pool.records("VM_metrics")
    assert not set(vbds) & set(pool.records("VBD")) and not set(vifs) & set(pool.records("VIF"))
    assert set(vdis) <= set(pool.records("VDI"))  # disks survive their VM
    check_reverse_references(pool)


async def test_host_operations_and_master_change() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master
    host = pool.host_refs[1]
    assert await failure(pool, "host.reboot", [s, host]) == ["HOST_NOT_DISABLED"]
    await pool.call("host.disable", [s, host], host=m)
    assert pool.records("host")[host]["enabled"] is False
    residents = await pool.call("host.get_resident_VMs", [s, host], host=m)
    assert pool.records("host")[host]["control_domain"] in residents
    users = [vm for vm in residents if not pool.records("VM")[vm]["is_control_domain"]]
    assert users
    assert (await failure(pool, "host.reboot", [s, host]))[0] == "HOST_IN_USE"
    await pool.call("host.evacuate", [s, host], host=m)
    assert await pool.call("host.get_resident_VMs", [s, host], host=m) == [
        pool.records("host")[host]["control_domain"]
    ]
    await pool.call("host.reboot", [s, host], host=m)
    assert pool.records("host")[host]["enabled"] is True
    assert (await pool.call("host.get_servertime", [s, host], host=m)).endswith("Z")
    await pool.call("pool.designate_new_master", [s, host], host=m)
    assert pool.master == host
    await pool.call("pool.emergency_transition_to_master", [s], host=m, local=True)
    assert pool.master == m
    check_reverse_references(pool)


async def test_random_operations_keep_reverse_references_consistent() -> None:
    pool = small_pool(vms=15)
    s = await login(pool)
    m = pool.master
    rng = random.Random(1234)
    ops = [
        "VM.start",
        "VM.clean_shutdown",
        "VM.hard_shutdown",
        "VM.suspend",
        "VM.resume",
        "VM.pause",
        "VM.unpause",
        "VM.clone",
        "VM.snapshot",
        "VM.destroy",
        "VM.pool_migrate",
        "VM.clean_reboot",
        "VM.copy",
        "VBD.destroy",
        "VIF.destroy",
    ]
    succeeded = 0
    for _ in range(300):
        op = rng.choice(ops)
        user_vms = [r for r, v in pool.records("VM").items() if not v["is_control_domain"]]
        vm = rng.choice(user_vms)
        args: list[Any] = {  # type: ignore[assignment]  # each a list: its items differ in type
            "VM.start": [vm, False, False],
            "VM.resume": [vm, False, False],
            "VM.clone": [vm, "c"],
            "VM.snapshot": [vm, "s"],
            "VM.copy": [vm, "c", NULL_REF],
            "VM.pool_migrate": [vm, rng.choice(pool.host_refs), {}],
        }.get(op, [vm])
        if op in ("VBD.destroy", "VIF.destroy"):
            table = pool.records(op.split(".")[0])
            if not table:
                continue
            args = [rng.choice(list(table))]
        try:
            await pool.call(op, [s, *args], host=m)
            succeeded += 1
        except Exception as error:
            code = getattr(error, "code", None)
            assert code in (
                "VM_BAD_POWER_STATE",
                "VM_IS_TEMPLATE",
                "VM_IS_SNAPSHOT",
                "OPERATION_NOT_ALLOWED",
            ), error
    assert succeeded > 50
    check_reverse_references(pool)


async def test_explicit_setters_and_their_errors() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master
    records = pool.records("VM")
    halted, running = vms(pool, "Halted")[0], vms(pool, "Running")[0]

    await pool.call("VM.set_memory", [s, halted, 2 << 30], host=m)
    assert records[halted]["memory_static_max"] == records[halted]["memory_dynamic_min"] == 2 << 30
    await pool.call("VM.set_VCPUs_max", [s, halted, 8], host=m)
    await pool.call("VM.set_VCPUs_at_startup", [s, halted, 6], host=m)
    assert (records[halted]["VCPUs_max"], records[halted]["VCPUs_at_startup"]) == (8, 6)
    assert (await failure(pool, "VM.set_VCPUs_at_startup", [s, halted, 9]))[0] == (
        "VALUE_NOT_SUPPORTED"
    )
    assert await failure(pool, "VM.set_VCPUs_max", [s, running, 8]) == [
        "VM_BAD_POWER_STATE",
        running,
        "halted",
        "running",
    ]
    cpus = records[running]["VCPUs_max"]
    await pool.call("VM.set_VCPUs_number_live", [s, running, cpus], host=m)
    assert pool.records("VM_metrics")[records[running]["metrics"]]["VCPUs_number"] == cpus

    sr = next(iter(pool.records("SR")))
    await pool.call("SR.set_name_label", [s, sr, "fast storage"], host=m)
    assert pool.records("SR")[sr]["name_label"] == "fast storage"

    # A disk plugged into a running VM cannot be destroyed; a detached one can.
    vbds = pool.records("VBD")
    plugged = next(
        vbds[v]["VDI"] for v in records[running]["VBDs"] if vbds[v]["currently_attached"]
    )
    assert await failure(pool, "VDI.destroy", [s, plugged]) == ["VDI_IN_USE", plugged, "destroy"]
    detached = next(vbds[v]["VDI"] for v in records[halted]["VBDs"] if vbds[v]["VDI"] != NULL_REF)
    await pool.call("VDI.destroy", [s, detached], host=m)
    assert detached not in pool.records("VDI")
    check_reverse_references(pool)


async def test_clean_shutdown_needs_the_guest_agent() -> None:
    pool = small_pool()
    s = await login(pool)
    vm = vms(pool, "Running")[0]
    guest = pool.records("VM")[vm]["guest_metrics"]
    pool.db.update("VM_guest_metrics", guest, {"PV_drivers_detected": False})
    assert await failure(pool, "VM.clean_shutdown", [s, vm]) == ["VM_LACKS_FEATURE_SHUTDOWN", vm]
    await pool.call("VM.hard_shutdown", [s, vm], host=pool.master)
    assert pool.records("VM")[vm]["power_state"] == "Halted"
