"""VM, host and pool lifecycle messages (`datamodel_vm.ml`, `xapi_vm_lifecycle.ml`,
`xapi_host.ml`, `xapi_pool.ml`).

Each VM operation checks its preconditions first (VM_BAD_POWER_STATE ...), then marks itself
in the VM's current_operations, spends its simulated time (task progress, cancellation
checks), and applies its effect together with the current_operations/allowed_operations
update in one write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xod.sim.db import Database
from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.implicit import CreateHook
from xod.sim.registry import Registry
from xod.sim.schema import new_record
from xod.sim.values import NEVER, NULL_REF, new_ref, new_uuid, now
from xod.sim.vm_states import allowed_operations, operation_error

_LIVE = ("Running", "Paused")

# An operation's effect: returns (call result, changes for the VM record).
Effect = Callable[[], tuple[Any, dict[str, Any]]]


# ---------------------------------------------------------------------------- helpers


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


async def _vm_operation(
    call: Call, vm: str, op: str, effect: Effect, check: Callable[[], None] | None = None
) -> Any:
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


def _host_is_usable(db: Database, host: str) -> bool:
    record = db.find("host", host)
    if record is None or not record["enabled"]:
        return False
    metrics = db.find("host_metrics", record["metrics"])
    return metrics is None or metrics["live"]


def _assert_host_usable(db: Database, host: str) -> None:
    db.get("host", host)
    if not _host_is_usable(db, host):
        raise XapiFailure("HOST_DISABLED", host)


def _pick_host(db: Database, record: dict[str, Any], exclude: str = NULL_REF) -> str:
    affinity = record["affinity"]
    if affinity != exclude and _host_is_usable(db, affinity):
        return affinity
    candidates = [
        (len(host["resident_VMs"]), ref)
        for ref, host in db.tables["host"].items()
        if ref != exclude and _host_is_usable(db, ref)
    ]
    if not candidates:
        raise XapiFailure("NO_HOSTS_AVAILABLE")
    return min(candidates)[1]


def _next_domid(db: Database, host: str) -> int:
    domids = [
        db.tables["VM"][vm]["domid"]
        for vm in db.get("host", host)["resident_VMs"]
        if vm in db.tables["VM"]
    ]
    return max(domids, default=0) + 1


def _go_live(call: Call, vm: str, host: str, paused: bool) -> dict[str, Any]:
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
    changes: dict[str, Any] = {
        "power_state": "Paused" if paused else "Running",
        "resident_on": host,
        "domid": _next_domid(db, host),
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


def _go_down(call: Call, vm: str, state: str = "Halted") -> dict[str, Any]:
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


def _suspend_vdi(db: Database, record: dict[str, Any]) -> str:
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


def _drop_suspend_vdi(db: Database, record: dict[str, Any]) -> dict[str, Any]:
    if db.find("VDI", record["suspend_VDI"]) is not None:
        db.delete("VDI", record["suspend_VDI"])
    return {"suspend_VDI": NULL_REF}


# ---------------------------------------------------------------------------- VM power


async def vm_start(call: Call, vm: str, start_paused: bool, force: bool) -> str:
    db = call.pool.db

    def effect() -> tuple[Any, dict[str, Any]]:
        host = _pick_host(db, db.get("VM", vm))
        return "", _go_live(call, vm, host, start_paused)

    def check() -> None:
        _pick_host(db, db.get("VM", vm))

    return await _vm_operation(call, vm, "start", effect, check)


async def vm_start_on(call: Call, vm: str, host: str, start_paused: bool, force: bool) -> str:
    db = call.pool.db

    def check() -> None:
        _assert_host_usable(db, host)

    def effect() -> tuple[Any, dict[str, Any]]:
        _assert_host_usable(db, host)
        return "", _go_live(call, vm, host, start_paused)

    return await _vm_operation(call, vm, "start_on", effect, check)


_CLEAN_OPS = ("clean_shutdown", "clean_reboot")


def _assert_guest_agent(db: Database, vm: str) -> None:
    """xapi refuses a clean shutdown or reboot the guest cannot perform (no PV drivers)."""
    metrics = db.find("VM_guest_metrics", db.get("VM", vm)["guest_metrics"])
    if not (metrics and metrics["PV_drivers_detected"]):
        raise XapiFailure("VM_LACKS_FEATURE_SHUTDOWN", vm)


def _simple(op: str) -> Callable[..., Any]:
    """Operations that only change the power state (and domain) of a VM."""

    async def handler(call: Call, vm: str) -> str:
        def effect() -> tuple[Any, dict[str, Any]]:
            record = call.pool.db.get("VM", vm)
            if op in ("clean_shutdown", "hard_shutdown", "shutdown"):
                changes = _go_down(call, vm)
                if record["power_state"] == "Suspended":
                    changes.update(_drop_suspend_vdi(call.pool.db, record))
                return "", changes
            if op in ("clean_reboot", "hard_reboot"):
                host = record["resident_on"]
                _go_down(call, vm)
                return "", _go_live(call, vm, host, False)
            if op == "suspend":
                changes = _go_down(call, vm, "Suspended")
                changes["suspend_VDI"] = _suspend_vdi(call.pool.db, record)
                return "", changes
            if op == "pause":
                return "", {"power_state": "Paused"}
            return "", {"power_state": "Running"}  # unpause

        check = (lambda: _assert_guest_agent(call.pool.db, vm)) if op in _CLEAN_OPS else None
        return await _vm_operation(call, vm, op, effect, check)

    handler.__name__ = f"vm_{op}"
    return handler


async def vm_resume(call: Call, vm: str, start_paused: bool, force: bool) -> str:
    db = call.pool.db

    def effect() -> tuple[Any, dict[str, Any]]:
        record = db.get("VM", vm)
        host = _pick_host(db, record)
        changes = _go_live(call, vm, host, start_paused)
        changes.update(_drop_suspend_vdi(db, record))
        return "", changes

    return await _vm_operation(call, vm, "resume", effect, lambda: _pick_host(db, db.get("VM", vm)))


async def vm_resume_on(call: Call, vm: str, host: str, start_paused: bool, force: bool) -> str:
    db = call.pool.db

    def effect() -> tuple[Any, dict[str, Any]]:
        _assert_host_usable(db, host)
        record = db.get("VM", vm)
        changes = _go_live(call, vm, host, start_paused)
        changes.update(_drop_suspend_vdi(db, record))
        return "", changes

    return await _vm_operation(call, vm, "resume_on", effect, lambda: _assert_host_usable(db, host))


async def vm_pool_migrate(call: Call, vm: str, host: str, options: dict[str, Any]) -> str:
    db = call.pool.db

    def effect() -> tuple[Any, dict[str, Any]]:
        _assert_host_usable(db, host)
        return "", {"resident_on": host, "domid": _next_domid(db, host)}

    return await _vm_operation(
        call, vm, "pool_migrate", effect, lambda: _assert_host_usable(db, host)
    )


# ---------------------------------------------------------------------------- VM copies


def _copy_vm(
    call: Call,
    vm: str,
    new_name: str,
    *,
    sr: str = NULL_REF,
    snapshot: bool = False,
    power_state: str = "Halted",
    ignore_vdis: tuple[str, ...] = (),
) -> str:
    """A new Halted VM like `vm`, with its own metrics, VDIs (copied), VBDs and VIFs."""
    db = call.pool.db
    source = db.get("VM", vm)
    stamp = now()
    metrics = db.insert(
        "VM_metrics",
        new_record(
            "VM_metrics", uuid=new_uuid(), install_time=stamp, last_updated=stamp, start_time=NEVER
        ),
    )
    record = {
        **source,
        "uuid": new_uuid(),
        "name_label": new_name,
        "power_state": power_state,
        "resident_on": NULL_REF,
        "scheduled_to_be_resident_on": NULL_REF,
        "domid": -1,
        "metrics": metrics,
        "guest_metrics": NULL_REF,
        "current_operations": {},
        "VBDs": [],
        "VIFs": [],
        "consoles": [],
        "snapshots": [],
        "children": [],
        "VGPUs": [],
        "VTPMs": [],
        "VUSBs": [],
        "crash_dumps": [],
        "attached_PCIs": [],
        "suspend_VDI": NULL_REF,
        "is_a_snapshot": snapshot,
        "snapshot_of": vm if snapshot else NULL_REF,
        "snapshot_time": stamp if snapshot else NEVER,
        "is_a_template": True if snapshot else source["is_a_template"],
        "is_default_template": False,
        "is_control_domain": False,
        "parent": vm if snapshot else NULL_REF,
    }
    record["allowed_operations"] = allowed_operations(record)
    new_vm = db.insert("VM", record)
    for vbd in source["VBDs"]:
        vbd_record = db.find("VBD", vbd)
        if vbd_record is None:
            continue
        vdi = vbd_record["VDI"]
        vdi_record = db.find("VDI", vdi)
        new_vdi = NULL_REF
        if vdi_record is not None and vdi not in ignore_vdis:
            new_vdi = db.insert(
                "VDI",
                {
                    **vdi_record,
                    "uuid": (u := new_uuid()),
                    "location": u,
                    "SR": sr if sr != NULL_REF else vdi_record["SR"],
                    "VBDs": [],
                    "snapshots": [],
                    "crash_dumps": [],
                    "current_operations": {},
                    "is_a_snapshot": snapshot,
                    "snapshot_of": vdi if snapshot else NULL_REF,
                    "snapshot_time": stamp if snapshot else NEVER,
                },
            )
        elif vdi_record is not None:
            continue
        db.insert(
            "VBD",
            {
                **vbd_record,
                "uuid": new_uuid(),
                "VM": new_vm,
                "VDI": new_vdi,
                "currently_attached": False,
                "current_operations": {},
            },
        )
    for vif in source["VIFs"]:
        vif_record = db.find("VIF", vif)
        if vif_record is None:
            continue
        mac = new_uuid().replace("-", "")
        db.insert(
            "VIF",
            {
                **vif_record,
                "uuid": new_uuid(),
                "VM": new_vm,
                "MAC": f"02:{mac[0:2]}:{mac[2:4]}:{mac[4:6]}:{mac[6:8]}:{mac[8:10]}",
                "currently_attached": False,
                "current_operations": {},
            },
        )
    return new_vm


async def vm_clone(call: Call, vm: str, new_name: str) -> str:
    return await _vm_operation(call, vm, "clone", lambda: (_copy_vm(call, vm, new_name), {}))


async def vm_copy(call: Call, vm: str, new_name: str, sr: str) -> str:
    db = call.pool.db

    def check() -> None:
        if sr != NULL_REF:
            db.get("SR", sr)

    return await _vm_operation(
        call, vm, "copy", lambda: (_copy_vm(call, vm, new_name, sr=sr), {}), check
    )


async def vm_snapshot(call: Call, vm: str, new_name: str, ignore_vdis: list[str]) -> str:
    return await _vm_operation(
        call,
        vm,
        "snapshot",
        lambda: (_copy_vm(call, vm, new_name, snapshot=True, ignore_vdis=tuple(ignore_vdis)), {}),
    )


async def vm_checkpoint(call: Call, vm: str, new_name: str) -> str:
    db = call.pool.db

    def effect() -> tuple[Any, dict[str, Any]]:
        snap = _copy_vm(call, vm, new_name, snapshot=True, power_state="Suspended")
        snap_record = db.get("VM", snap)
        db.update("VM", snap, {"suspend_VDI": _suspend_vdi(db, snap_record)})
        return snap, {}

    return await _vm_operation(call, vm, "checkpoint", effect)


async def vm_revert(call: Call, snapshot: str) -> str:
    db = call.pool.db
    record = db.get("VM", snapshot)

    def check() -> None:
        if not record["is_a_snapshot"] or db.find("VM", record["snapshot_of"]) is None:
            raise XapiFailure("VM_REVERT_FAILED", snapshot, record["snapshot_of"])

    def effect() -> tuple[Any, dict[str, Any]]:
        target = record["snapshot_of"]
        target_record = db.get("VM", target)
        changes: dict[str, Any] = {"parent": snapshot}
        if target_record["power_state"] in _LIVE:
            changes.update(_go_down(call, target))
        elif target_record["power_state"] == "Suspended":
            changes.update(_drop_suspend_vdi(db, target_record))
            changes["power_state"] = "Halted"
        changes["allowed_operations"] = allowed_operations({**target_record, **changes})
        db.update("VM", target, changes)
        return "", {}

    return await _vm_operation(call, snapshot, "revert", effect, check)


async def vm_destroy(call: Call, vm: str) -> str:
    db = call.pool.db

    def effect() -> tuple[Any, dict[str, Any]]:
        record = db.get("VM", vm)
        for cls, refs in (
            ("VBD", record["VBDs"]),
            ("VIF", record["VIFs"]),
            ("console", record["consoles"]),
        ):
            for ref in refs:
                if db.find(cls, ref) is not None:
                    db.delete(cls, ref)
        for cls, ref in (
            ("VM_metrics", record["metrics"]),
            ("VM_guest_metrics", record["guest_metrics"]),
        ):
            if db.find(cls, ref) is not None:
                db.delete(cls, ref)
        db.delete("VM", vm)
        return "", {}

    return await _vm_operation(call, vm, "destroy", effect)


def _vm_create_hook(call: Call, ref: str, record: dict[str, Any]) -> None:
    db = call.pool.db
    stamp = now()
    metrics = db.insert(
        "VM_metrics",
        new_record("VM_metrics", uuid=new_uuid(), install_time=stamp, last_updated=stamp),
    )
    changes: dict[str, Any] = {
        "metrics": metrics,
        "domid": -1,
        "resident_on": NULL_REF,
        "guest_metrics": NULL_REF,
        "power_state": "Halted",
    }
    changes["allowed_operations"] = allowed_operations({**record, **changes})
    db.update("VM", ref, changes)


CREATE_HOOKS: dict[str, CreateHook] = {"VM": _vm_create_hook}


# ---------------------------------------------------------------------------- host / pool


def _non_control_residents(db: Database, host: str) -> list[str]:
    return [
        vm
        for vm in db.get("host", host)["resident_VMs"]
        if vm in db.tables["VM"] and not db.tables["VM"][vm]["is_control_domain"]
    ]


def host_enable(call: Call, host: str) -> str:
    db = call.pool.db
    db.get("host", host)
    db.update("host", host, {"enabled": True})
    return ""


def host_disable(call: Call, host: str, auto_enable: bool) -> str:
    db = call.pool.db
    db.get("host", host)
    db.update("host", host, {"enabled": False})
    return ""


def _assert_can_power_off(db: Database, host: str) -> None:
    if db.get("host", host)["enabled"]:
        raise XapiFailure("HOST_NOT_DISABLED")
    residents = _non_control_residents(db, host)
    if residents:
        raise XapiFailure("HOST_IN_USE", host, "VM", residents[0])


async def host_reboot(call: Call, host: str) -> str:
    db = call.pool.db
    _assert_can_power_off(db, host)
    metrics = db.get("host", host)["metrics"]
    db.update("host_metrics", metrics, {"live": False, "last_updated": now()})
    await call.work()
    db.update("host_metrics", metrics, {"live": True, "last_updated": now()})
    db.update("host", host, {"enabled": True})
    return ""


async def host_shutdown(call: Call, host: str) -> str:
    db = call.pool.db
    _assert_can_power_off(db, host)
    await call.work()
    db.update(
        "host_metrics", db.get("host", host)["metrics"], {"live": False, "last_updated": now()}
    )
    return ""


async def host_evacuate(call: Call, host: str, network: str, batch_size: int) -> str:
    db = call.pool.db
    db.get("host", host)
    residents = _non_control_residents(db, host)
    targets = [ref for ref in db.tables["host"] if ref != host and _host_is_usable(db, ref)]
    if residents and not targets:
        raise XapiFailure("NO_HOSTS_AVAILABLE")
    await call.work()
    for index, vm in enumerate(residents):
        target = targets[index % len(targets)]
        record = db.find("VM", vm)
        if record is None or record["resident_on"] != host:
            continue
        changes = {"resident_on": target, "domid": _next_domid(db, target)}
        db.update("VM", vm, changes)
    return ""


def host_get_servertime(call: Call, host: str) -> str:
    call.pool.db.get("host", host)
    return now()


def host_call_plugin(call: Call, host: str, plugin: str, fn: str, args: dict) -> str:
    call.pool.db.get("host", host)
    return ""


async def pool_designate_new_master(call: Call, host: str) -> str:
    call.pool.db.get("host", host)
    await call.work()
    call.pool.designate_new_master(host)
    return ""


def pool_emergency_transition_to_master(call: Call) -> str:
    call.pool.designate_new_master(call.host)
    return ""


# ---------------------------------------------------------------------------- explicit setters
# Fields that are RC in the datamodel (no implicit setter) but have explicit messages:
# datamodel_vm.ml, datamodel_sr.ml, datamodel_vdi.ml.


def _assert_halted(db: Database, vm: str) -> dict[str, Any]:
    record = db.get("VM", vm)
    if record["power_state"] != "Halted":
        raise XapiFailure("VM_BAD_POWER_STATE", vm, "halted", record["power_state"].lower())
    return record


def vm_set_vcpus_max(call: Call, vm: str, value: int) -> str:
    record = _assert_halted(call.pool.db, vm)
    if value < 1 or value < record["VCPUs_at_startup"]:
        raise XapiFailure("VALUE_NOT_SUPPORTED", "VCPUs_max", value, "below VCPUs_at_startup")
    call.pool.db.update("VM", vm, {"VCPUs_max": value})
    return ""


def vm_set_vcpus_at_startup(call: Call, vm: str, value: int) -> str:
    record = call.pool.db.get("VM", vm)
    if not 1 <= value <= record["VCPUs_max"]:
        raise XapiFailure("VALUE_NOT_SUPPORTED", "VCPUs_at_startup", value, "above VCPUs_max")
    call.pool.db.update("VM", vm, {"VCPUs_at_startup": value})
    return ""


def vm_set_vcpus_number_live(call: Call, vm: str, value: int) -> str:
    db = call.pool.db
    record = db.get("VM", vm)
    if record["power_state"] != "Running":
        raise XapiFailure("VM_BAD_POWER_STATE", vm, "running", record["power_state"].lower())
    if not 1 <= value <= record["VCPUs_max"]:
        raise XapiFailure("VALUE_NOT_SUPPORTED", "VCPUs_number", value, "above VCPUs_max")
    db.update("VM", vm, {"VCPUs_at_startup": value})
    if db.find("VM_metrics", record["metrics"]) is not None:
        db.update("VM_metrics", record["metrics"], {"VCPUs_number": value})
    return ""


def vm_set_memory(call: Call, vm: str, value: int) -> str:
    _assert_halted(call.pool.db, vm)
    call.pool.db.update(
        "VM",
        vm,
        {"memory_static_max": value, "memory_dynamic_max": value, "memory_dynamic_min": value},
    )
    return ""


def vm_set_ha_restart_priority(call: Call, vm: str, value: str) -> str:
    call.pool.db.get("VM", vm)
    if value not in ("", "restart", "best-effort"):
        raise XapiFailure("INVALID_VALUE", "ha_restart_priority", value)
    call.pool.db.update("VM", vm, {"ha_restart_priority": value})
    return ""


def _field_setter(cls: str, field: str) -> Callable[..., str]:
    def handler(call: Call, ref: str, value: str) -> str:
        call.pool.db.get(cls, ref)
        call.pool.db.update(cls, ref, {field: value})
        return ""

    handler.__name__ = f"{cls}_set_{field}"
    return handler


def vdi_destroy(call: Call, vdi: str) -> str:
    db = call.pool.db
    for vbd in db.get("VDI", vdi)["VBDs"]:
        if db.get("VBD", vbd)["currently_attached"]:
            raise XapiFailure("VDI_IN_USE", vdi, "destroy")
    db.delete("VDI", vdi)
    return ""


# ---------------------------------------------------------------------------- registry


def register(registry: Registry) -> None:
    def add(name: str, params: list[Any], handler: Callable[..., Any], **flags: Any) -> None:
        registry.add(name, params, handler, async_capable=True, **flags)

    vm = ("vm", "ref:VM")
    paused_force = [("start_paused", "bool"), ("force", "bool")]
    add("VM.start", [vm, *paused_force], vm_start)
    add("VM.start_on", [vm, ("host", "ref:host"), *paused_force], vm_start_on)
    for op in (
        "clean_shutdown",
        "hard_shutdown",
        "shutdown",
        "clean_reboot",
        "hard_reboot",
        "suspend",
        "pause",
        "unpause",
    ):
        add(f"VM.{op}", [vm], _simple(op))
    add("VM.resume", [vm, *paused_force], vm_resume)
    add("VM.resume_on", [vm, ("host", "ref:host"), *paused_force], vm_resume_on)
    add("VM.clone", [vm, ("new_name", "string")], vm_clone)
    add("VM.copy", [vm, ("new_name", "string"), ("sr", "ref:SR")], vm_copy)
    add("VM.snapshot", [vm, ("new_name", "string"), ("ignore_vdis", "set", [])], vm_snapshot)
    add("VM.checkpoint", [vm, ("new_name", "string")], vm_checkpoint)
    add("VM.revert", [("snapshot", "ref:VM")], vm_revert)
    add("VM.destroy", [("self", "ref:VM")], vm_destroy)
    add("VM.pool_migrate", [vm, ("host", "ref:host"), ("options", "map")], vm_pool_migrate)
    vm_value = ("self", "ref:VM")
    registry.add("VM.set_VCPUs_max", [vm_value, ("value", "int")], vm_set_vcpus_max)
    registry.add("VM.set_VCPUs_at_startup", [vm_value, ("value", "int")], vm_set_vcpus_at_startup)
    add("VM.set_VCPUs_number_live", [vm_value, ("nvcpu", "int")], vm_set_vcpus_number_live)
    registry.add("VM.set_memory", [vm_value, ("value", "int")], vm_set_memory)
    registry.add(
        "VM.set_ha_restart_priority", [vm_value, ("value", "string")], vm_set_ha_restart_priority
    )
    for cls in ("SR", "VDI"):
        for field in ("name_label", "name_description"):
            registry.add(
                f"{cls}.set_{field}",
                [("self", f"ref:{cls}"), ("value", "string")],
                _field_setter(cls, field),
            )
    add("VDI.destroy", [("self", "ref:VDI")], vdi_destroy)
    host = ("host", "ref:host")
    add("host.enable", [host], host_enable)
    add("host.disable", [host, ("auto_enable", "bool", True)], host_disable)
    add("host.reboot", [host], host_reboot)
    add("host.shutdown", [host], host_shutdown)
    add(
        "host.evacuate",
        [host, ("network", "ref:network", NULL_REF), ("batch_size", "int", 0)],
        host_evacuate,
    )
    registry.add("host.get_servertime", [host], host_get_servertime)
    registry.add("host.get_server_localtime", [host], host_get_servertime)
    add(
        "host.call_plugin",
        [host, ("plugin", "string"), ("fn", "string"), ("args", "map")],
        host_call_plugin,
    )
    add("pool.designate_new_master", [host], pool_designate_new_master)
    add(
        "pool.emergency_transition_to_master",
        [],
        pool_emergency_transition_to_master,
        slave_ok=True,
    )
