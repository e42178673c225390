"""What the simulator refuses as xapi does: an offline or disabled host, a guest without PV
drivers asked to suspend, a copy into an SR without room; and its call log."""

from __future__ import annotations

from tests.sim.core_helpers import failure, login, small_pool, vms


async def test_an_offline_host_is_not_a_disabled_one() -> None:
    pool = small_pool()
    s = await login(pool)
    vm = vms(pool, "Halted")[0]
    host = pool.host_refs[1]
    metrics = pool.records("host")[host]["metrics"]
    pool.db.update("host_metrics", metrics, {"live": False})
    assert await failure(pool, "VM.start_on", [s, vm, host, False, False]) == [
        "HOST_OFFLINE",
        host,
    ]
    pool.db.update("host_metrics", metrics, {"live": True})
    await pool.call("host.disable", [s, host], host=pool.master)
    assert await failure(pool, "VM.start_on", [s, vm, host, False, False]) == [
        "HOST_DISABLED",
        host,
    ]
    await pool.call("host.enable", [s, host], host=pool.master)
    await pool.call("VM.start_on", [s, vm, host, False, False], host=pool.master)
    assert pool.records("VM")[vm]["resident_on"] == host


async def test_suspend_needs_pv_drivers() -> None:
    pool = small_pool()
    s = await login(pool)
    vm = vms(pool, "Running")[0]
    guest = pool.records("VM")[vm]["guest_metrics"]
    pool.db.update("VM_guest_metrics", guest, {"PV_drivers_detected": False})
    assert await failure(pool, "VM.suspend", [s, vm]) == ["VM_MISSING_PV_DRIVERS", vm]
    assert pool.records("VM")[vm]["power_state"] == "Running"
    pool.db.update("VM_guest_metrics", guest, {"PV_drivers_detected": True})
    await pool.call("VM.suspend", [s, vm], host=pool.master)
    assert pool.records("VM")[vm]["power_state"] == "Suspended"


async def test_copy_into_a_full_sr() -> None:
    pool = small_pool()
    s = await login(pool)
    vm = vms(pool, "Halted")[0]
    records = pool.records("VM")
    vbds, vdis = pool.records("VBD"), pool.records("VDI")
    disks = [vbds[v]["VDI"] for v in records[vm]["VBDs"] if vbds[v]["VDI"] in vdis]
    needed = sum(vdis[d]["virtual_size"] for d in disks)
    sr = vdis[disks[0]]["SR"]
    used = pool.records("SR")[sr]["physical_utilisation"]
    pool.db.update("SR", sr, {"physical_size": used + needed - 1})
    copies = len(records)
    assert await failure(pool, "VM.copy", [s, vm, "copy", sr]) == [
        "SR_FULL",
        str(needed),
        str(needed - 1),
    ]
    assert len(records) == copies
    pool.db.update("SR", sr, {"physical_size": used + needed})
    new_vm = await pool.call("VM.copy", [s, vm, "copy", sr], host=pool.master)
    assert records[new_vm]["name_label"] == "copy"


async def test_the_call_log_names_the_latest_calls() -> None:
    pool = small_pool()
    s = await login(pool)
    vm = vms(pool, "Halted")[0]
    task = await pool.call("Async.VM.start", [s, vm, False, False], host=pool.master)
    assert list(pool.call_log)[-2:] == ["session.login_with_password", "Async.VM.start"]
    assert task in pool.records("task")
