"""The steps VM operations share: the current_operations protocol around an operation, host
choice, and what creating or destroying a domain does to the VM's records (metrics, guest
metrics, consoles, attached devices, suspend image).

Each VM operation checks its preconditions first (VM_BAD_POWER_STATE ...), then marks itself
in the VM's current_operations, spends its simulated time (task progress, cancellation
checks), and applies its effect together with the current_operations/allowed_operations
update in one write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from xod.sim.db import Database
from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.schema import new_record
from xod.sim.values import NULL_REF, new_ref, new_uuid, now
from xod.sim.vm_states import allowed_operations, operation_error

LIVE_STATES = ("Running", "Paused")

# An operation's effect: returns (call result, changes for the VM record).
Result = TypeVar("Result")
Effect = Callable[[], tuple[Result, dict[str, Any]]]


def _begin(db: Database, vm: str, key: str, op: str) -> None:
    record = db.get("VM", vm)
    db.update(
        "VM",
        vm,
        {"current_operations": {**record["current_operations"], key: op}, "allowed_operations": []},
    )


def _end(db: Database, vm: str, key: str, changes: dict[str, Any]) -> None:
    record = db.find("VM", vm)
    if record is None:
        return
    ops = {k: v for k, v in record["current_operations"].items() if k != key}
    changes["current_operations"] = ops
    changes["allowed_operations"] = allowed_operations({**record, **changes})
    db.update("VM", vm, changes)


async def vm_operation(
    call: Call, vm: str, op: str, effect: Effect[Result], check: Callable[[], object] | None = None
) -> Result:
    db = call.pool.db
    record = db.get("VM", vm)
    error = operation_error(vm, record, op)
    if error is not None:
        raise error
    if check is not None:
        check()
    key = call.op_key or new_ref()
    _begin(db, vm, key, op)
    try:
        await call.work()
        result, changes = effect()
    except BaseException:
        _end(db, vm, key, {})
        raise
    _end(db, vm, key, changes)
    return result


def host_is_usable(db: Database, host: str) -> bool:
    record = db.find("host", host)
    if record is None or not record["enabled"]:
        return False
    metrics = db.find("host_metrics", record["metrics"])
    return metrics is None or metrics["live"]


def assert_host_usable(db: Database, host: str) -> None:
    """xapi's checks before placing a VM on `host`: it must be live, then enabled."""
    record = db.get("host", host)
    metrics = db.find("host_metrics", record["metrics"])
    if metrics is not None and not metrics["live"]:
        raise XapiFailure("HOST_OFFLINE", host)
    if not record["enabled"]:
        raise XapiFailure("HOST_DISABLED", host)


def pick_host(db: Database, record: dict[str, Any], exclude: str = NULL_REF) -> str:
    affinity: str = record["affinity"]
    if affinity != exclude and host_is_usable(db, affinity):
        return affinity
    candidates = [
        (len(host["resident_VMs"]), ref)
        for ref, host in db.tables["host"].items()
        if ref != exclude and host_is_usable(db, ref)
    ]
    if not candidates:
        raise XapiFailure("NO_HOSTS_AVAILABLE")
    return min(candidates)[1]


def next_domid(db: Database, host: str) -> int:
    domids = [
        db.tables["VM"][vm]["domid"]
        for vm in db.get("host", host)["resident_VMs"]
        if vm in db.tables["VM"]
    ]
    return max(domids, default=0) + 1


def go_live(call: Call, vm: str, host: str, paused: bool) -> dict[str, Any]:
    """Domain creation: metrics, guest metrics, console, attached devices."""
    db = call.pool.db
    record = db.get("VM", vm)
    stamp = now()
    metrics = record["metrics"]
    if db.find("VM_metrics", metrics) is not None:
        db.update(
            "VM_metrics",
            metrics,
            {
                "memory_actual": record["memory_dynamic_max"],
                "VCPUs_number": record["VCPUs_at_startup"],
                "VCPUs_utilisation": {str(i): 0.0 for i in range(record["VCPUs_at_startup"])},
                "start_time": stamp,
                "last_updated": stamp,
                "current_domain_type": "hvm",
            },
        )
    cpu = db.get("host", host)["cpu_info"]
    changes: dict[str, Any] = {
        # What the domain booted on: live migration checks the target's CPU against it.
        "last_boot_CPU_flags": {
            "vendor": cpu.get("vendor", ""),
            "features": cpu.get("features", ""),
        },
        "power_state": "Paused" if paused else "Running",
        "resident_on": host,
        "domid": next_domid(db, host),
        "scheduled_to_be_resident_on": NULL_REF,
    }
    if db.find("VM_guest_metrics", record["guest_metrics"]) is None:
        changes["guest_metrics"] = db.insert(
            "VM_guest_metrics",
            new_record(
                "VM_guest_metrics",
                uuid=new_uuid(),
                os_version={"name": "Debian GNU/Linux 12 (bookworm)", "distro": "debian"},
                PV_drivers_version={"major": "9", "minor": "3", "micro": "1"},
                PV_drivers_up_to_date=True,
                networks={"0/ip": "10.0.0.2"},
                other={"feature-shutdown": "1", "feature-suspend": "1"},
                last_updated=stamp,
                live=True,
                can_use_hotplug_vbd="yes",
                can_use_hotplug_vif="yes",
                PV_drivers_detected=True,
            ),
        )
    if not record["consoles"]:
        console_uuid = new_uuid()
        db.insert(
            "console",
            new_record(
                "console",
                uuid=console_uuid,
                protocol="rfb",
                VM=vm,
                location=f"https://{call.pool.address_of(host)}/console?uuid={console_uuid}",
            ),
        )
    _set_devices_attached(db, record, True)
    return changes


def go_down(call: Call, vm: str, state: str = "Halted") -> dict[str, Any]:
    """Domain destruction: metrics reset, guest metrics and consoles removed, devices detached."""
    db = call.pool.db
    record = db.get("VM", vm)
    if db.find("VM_metrics", record["metrics"]) is not None:
        db.update(
            "VM_metrics",
            record["metrics"],
            {
                "memory_actual": 0,
                "VCPUs_number": 0,
                "VCPUs_utilisation": {},
                "last_updated": now(),
                "current_domain_type": "unspecified",
            },
        )
    changes: dict[str, Any] = {"power_state": state, "resident_on": NULL_REF, "domid": -1}
    if db.find("VM_guest_metrics", record["guest_metrics"]) is not None:
        db.delete("VM_guest_metrics", record["guest_metrics"])
        changes["guest_metrics"] = NULL_REF
    for console in record["consoles"]:
        if db.find("console", console) is not None:
            db.delete("console", console)
    _set_devices_attached(db, record, False)
    return changes


def _set_devices_attached(db: Database, record: dict[str, Any], attached: bool) -> None:
    for cls, refs in (("VBD", record["VBDs"]), ("VIF", record["VIFs"])):
        for ref in refs:
            device = db.find(cls, ref)
            if device is not None and device["currently_attached"] != attached:
                db.update(cls, ref, {"currently_attached": attached})


def suspend_vdi(db: Database, record: dict[str, Any]) -> str:
    sr = NULL_REF
    for vbd in record["VBDs"]:
        vdi = db.find("VDI", db.tables["VBD"][vbd]["VDI"]) if vbd in db.tables["VBD"] else None
        if vdi is not None:
            sr = vdi["SR"]
            break
    if sr == NULL_REF:
        sr = db.tables["pool"][next(iter(db.tables["pool"]))]["suspend_image_SR"]
    size = record["memory_static_max"]
    return db.insert(
        "VDI",
        new_record(
            "VDI",
            uuid=(u := new_uuid()),
            name_label=f"Suspend image for {record['name_label']}",
            SR=sr,
            virtual_size=size,
            physical_utilisation=size,
            type="suspend",
            location=u,
            managed=True,
            other_config={},
            parent=NULL_REF,
        ),
    )


def drop_suspend_vdi(db: Database, record: dict[str, Any]) -> dict[str, Any]:
    if db.find("VDI", record["suspend_VDI"]) is not None:
        db.delete("VDI", record["suspend_VDI"])
    return {"suspend_VDI": NULL_REF}
