"""Live migration inside the pool: VM.pool_migrate (the domain moves, its disks stay), and
storage motion — host.migrate_receive, VM.assert_can_migrate, VM.migrate_send — which also
moves the VM's disks to the SRs its VDI map names."""

from __future__ import annotations

from typing import Any

from xod.sim.db import Database
from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.lifecycle.domains import LIVE_STATES, assert_host_usable, next_domid, vm_operation
from xod.sim.registry import Registry
from xod.sim.values import NULL_REF
from xod.sim.vm_states import operation_error


def _assert_cpu_compatible(db: Database, vm: str, host: str, options: dict[str, Any]) -> None:
    """xapi compares the CPU a running VM booted on with the target host's, unless the options
    say force=true."""
    if str(options.get("force", "")).lower() == "true":
        return
    booted = db.get("VM", vm)["last_boot_CPU_flags"].get("vendor")
    vendor = db.get("host", host)["cpu_info"].get("vendor")
    if booted and vendor and booted != vendor:
        raise XapiFailure(
            "VM_INCOMPATIBLE_WITH_THIS_HOST",
            vm,
            host,
            f"the VM booted on a {booted} CPU, the host has a {vendor} one",
        )


async def vm_pool_migrate(call: Call, vm: str, host: str, options: dict[str, Any]) -> str:
    db = call.pool.db

    def check() -> None:
        assert_host_usable(db, host)
        _assert_cpu_compatible(db, vm, host, options)

    def effect() -> tuple[Any, dict[str, Any]]:
        check()
        return "", {"resident_on": host, "domid": next_domid(db, host)}

    return await vm_operation(call, vm, "pool_migrate", effect, check)


def host_migrate_receive(
    call: Call, host: str, network: str, options: dict[str, Any]
) -> dict[str, str]:
    """The destination token VM.migrate_send takes: where the receiving host listens."""
    db = call.pool.db
    db.get("host", host)
    db.get("network", network)
    address = call.pool.address_of(host)
    return {
        "host": host,
        "network": network,
        "master": f"http://{call.pool.address_of(call.pool.master)}/",
        "xenops": f"http://{address}/services/xenops",
        "SM": f"http://{address}/services/SM",
    }


def _check_migration(
    db: Database, vm: str, dest: dict[str, Any], vdi_map: dict[str, str], options: dict[str, Any]
) -> str:
    """The destination host, once everything the migration needs is there."""
    host: str = dest.get("host", NULL_REF)
    db.get("host", host)
    assert_host_usable(db, host)
    if db.get("VM", vm)["power_state"] in LIVE_STATES:
        _assert_cpu_compatible(db, vm, host, options)
    needed: dict[str, int] = {}
    for vdi, sr in vdi_map.items():
        record = db.get("VDI", vdi)
        db.get("SR", sr)
        if record["SR"] != sr:
            needed[sr] = needed.get(sr, 0) + record["virtual_size"]
    for sr, size in needed.items():
        record = db.get("SR", sr)
        free = record["physical_size"] - record["physical_utilisation"]
        if size > free:
            raise XapiFailure("SR_FULL", size, free)
    return host


def vm_assert_can_migrate(
    call: Call,
    vm: str,
    dest: dict[str, Any],
    live: bool,
    vdi_map: dict[str, str],
    vif_map: dict[str, str],
    options: dict[str, Any],
    vgpu_map: dict[str, str],
) -> str:
    db = call.pool.db
    error = operation_error(vm, db.get("VM", vm), "migrate_send")
    if error is not None:
        raise error
    _check_migration(db, vm, dest, vdi_map, options)
    return ""


async def vm_migrate_send(
    call: Call,
    vm: str,
    dest: dict[str, Any],
    live: bool,
    vdi_map: dict[str, str],
    vif_map: dict[str, str],
    options: dict[str, Any],
    vgpu_map: dict[str, str],
) -> str:
    db = call.pool.db

    def effect() -> tuple[Any, dict[str, Any]]:
        host = _check_migration(db, vm, dest, vdi_map, options)
        for vdi, sr in vdi_map.items():
            if db.get("VDI", vdi)["SR"] != sr:
                db.update("VDI", vdi, {"SR": sr})
        for vif, network in vif_map.items():
            db.get("network", network)
            db.update("VIF", vif, {"network": network})
        if db.get("VM", vm)["power_state"] in LIVE_STATES:
            return vm, {"resident_on": host, "domid": next_domid(db, host)}
        return vm, {}

    return await vm_operation(
        call,
        vm,
        "migrate_send",
        effect,
        lambda: _check_migration(db, vm, dest, vdi_map, options),
    )


def register(registry: Registry) -> None:
    vm = ("vm", "ref:VM")
    storage_motion: list[tuple[Any, ...]] = [
        vm,
        ("dest", "map"),
        ("live", "bool"),
        ("vdi_map", "map"),
        ("vif_map", "map"),
        ("options", "map"),
        ("vgpu_map", "map", {}),
    ]
    for name, params, handler in (
        ("VM.pool_migrate", [vm, ("host", "ref:host"), ("options", "map")], vm_pool_migrate),
        (
            "host.migrate_receive",
            [("host", "ref:host"), ("network", "ref:network"), ("options", "map")],
            host_migrate_receive,
        ),
        ("VM.assert_can_migrate", storage_motion, vm_assert_can_migrate),
        ("VM.migrate_send", storage_motion, vm_migrate_send),
    ):
        registry.add(name, params, handler, async_capable=True)
