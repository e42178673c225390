"""Live migration in the simulator: VM.pool_migrate checks the CPU a VM booted on (unless
forced); storage motion (host.migrate_receive, VM.assert_can_migrate, VM.migrate_send) moves
the domain and the disks it is told to."""

from __future__ import annotations

from tests.sim.core_helpers import check_reverse_references, failure, login, small_pool, vms
from xod.sim.pool import SimPool


def _other_host(pool: SimPool, vm: str) -> str:
    here = pool.records("VM")[vm]["resident_on"]
    return next(h for h in pool.host_refs if h != here)


def _disks(pool: SimPool, vm: str) -> list[str]:
    vbds = pool.records("VBD")
    return [
        vbds[v]["VDI"]
        for v in pool.records("VM")[vm]["VBDs"]
        if vbds[v]["type"] == "Disk" and vbds[v]["VDI"] in pool.records("VDI")
    ]


def _sr_named(pool: SimPool, prefix: str) -> str:
    return next(r for r, sr in pool.records("SR").items() if sr["name_label"].startswith(prefix))


async def test_pool_migrate_checks_the_cpu_unless_forced() -> None:
    pool = small_pool()
    s = await login(pool)
    vm = vms(pool, "Halted")[0]
    await pool.call("VM.start", [s, vm, False, False], host=pool.master)
    record = pool.records("VM")[vm]
    assert record["last_boot_CPU_flags"]["vendor"] == "GenuineIntel"
    target = _other_host(pool, vm)
    cpu = pool.records("host")[target]["cpu_info"]
    pool.db.update("host", target, {"cpu_info": {**cpu, "vendor": "AuthenticAMD"}})
    refused = await failure(pool, "VM.pool_migrate", [s, vm, target, {}])
    assert refused[:3] == ["VM_INCOMPATIBLE_WITH_THIS_HOST", vm, target]
    assert record["resident_on"] != target
    await pool.call("VM.pool_migrate", [s, vm, target, {"force": "true"}], host=pool.master)
    assert record["resident_on"] == target


async def test_storage_motion_moves_the_domain_and_the_mapped_disks() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master
    vm = vms(pool, "Running")[0]
    target = _other_host(pool, vm)
    network = next(iter(pool.records("network")))
    token = await pool.call("host.migrate_receive", [s, target, network, {}], host=m)
    assert token["host"] == target
    disks = _disks(pool, vm)
    local = next(
        r for r, sr in pool.records("SR").items()
        if not sr["shared"] and any(pool.records("PBD")[b]["host"] == target for b in sr["PBDs"])
    )  # fmt: skip
    vdi_map = {disks[0]: local}
    args = [s, vm, token, True, vdi_map, {}, {}]
    assert await pool.call("VM.assert_can_migrate", args, host=m) == ""
    assert pool.records("VDI")[disks[0]]["SR"] != local  # only checked

    # No room on the target SR: refused by both, nothing moved.
    used = pool.records("SR")[local]["physical_utilisation"]
    pool.db.update("SR", local, {"physical_size": used})
    assert (await failure(pool, "VM.assert_can_migrate", args))[0] == "SR_FULL"
    assert (await failure(pool, "VM.migrate_send", args))[0] == "SR_FULL"
    pool.db.update("SR", local, {"physical_size": used * 4})

    assert await pool.call("VM.migrate_send", args, host=m) == vm
    record = pool.records("VM")[vm]
    assert record["resident_on"] == target and record["power_state"] == "Running"
    assert pool.records("VDI")[disks[0]]["SR"] == local
    assert disks[0] in pool.records("SR")[local]["VDIs"]
    assert all(pool.records("VDI")[d]["SR"] != local for d in disks[1:])
    check_reverse_references(pool)

    halted = vms(pool, "Halted")[0]
    nfs = _sr_named(pool, "NFS")
    assert (
        await failure(
            pool, "VM.migrate_send", [s, halted, {"host": "OpaqueRef:x"}, True, {}, {}, {}]
        )
    )[0] == "HANDLE_INVALID"
    halted_args = [s, halted, token, True, {d: nfs for d in _disks(pool, halted)}, {}, {}]
    assert await pool.call("VM.migrate_send", halted_args, host=m) == halted
    assert pool.records("VM")[halted]["power_state"] == "Halted"
