"""VM copies and removal: clone, copy, snapshot, checkpoint, revert, destroy, and the records
VM.create adds."""

from __future__ import annotations

from typing import Any

from xod.sim.db import Database
from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.implicit import CreateHook
from xod.sim.lifecycle.domains import (
    LIVE_STATES,
    drop_suspend_vdi,
    go_down,
    suspend_vdi,
    vm_operation,
)
from xod.sim.registry import Registry
from xod.sim.schema import new_record
from xod.sim.values import NEVER, NULL_REF, new_uuid, now
from xod.sim.vm_states import allowed_operations


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
    return await vm_operation(call, vm, "clone", lambda: (_copy_vm(call, vm, new_name), {}))


def _assert_room_for_copy(db: Database, vm: str, sr: dict[str, Any]) -> None:
    """xapi's SR_FULL(requested, maximum) when the VM's disks do not fit in the SR's free space."""
    needed = 0
    for vbd in db.get("VM", vm)["VBDs"]:
        vdi = db.find("VDI", (db.find("VBD", vbd) or {}).get("VDI", NULL_REF))
        if vdi is not None:
            needed += vdi["virtual_size"]
    free = sr["physical_size"] - sr["physical_utilisation"]
    if needed > free:
        raise XapiFailure("SR_FULL", needed, free)


async def vm_copy(call: Call, vm: str, new_name: str, sr: str) -> str:
    db = call.pool.db

    def check() -> None:
        if sr != NULL_REF:
            _assert_room_for_copy(db, vm, db.get("SR", sr))

    return await vm_operation(
        call, vm, "copy", lambda: (_copy_vm(call, vm, new_name, sr=sr), {}), check
    )


async def vm_snapshot(call: Call, vm: str, new_name: str, ignore_vdis: list[str]) -> str:
    return await vm_operation(
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
        db.update("VM", snap, {"suspend_VDI": suspend_vdi(db, snap_record)})
        return snap, {}

    return await vm_operation(call, vm, "checkpoint", effect)


# What VM.revert restores from the snapshot (beyond its disks, which the simulator keeps).
REVERTED_FIELDS = (
    "VCPUs_max", "VCPUs_at_startup", "memory_static_min", "memory_static_max",
    "memory_dynamic_min", "memory_dynamic_max", "other_config",
)  # fmt: skip


async def vm_revert(call: Call, snapshot: str) -> str:
    db = call.pool.db
    record = db.get("VM", snapshot)

    def check() -> None:
        if not record["is_a_snapshot"] or db.find("VM", record["snapshot_of"]) is None:
            raise XapiFailure("VM_REVERT_FAILED", snapshot, record["snapshot_of"])

    def effect() -> tuple[Any, dict[str, Any]]:
        target = record["snapshot_of"]
        target_record = db.get("VM", target)
        # As xapi: the VM gets the snapshot's configuration back.
        changes: dict[str, Any] = {"parent": snapshot}
        changes.update({field: record[field] for field in REVERTED_FIELDS})
        if target_record["power_state"] in LIVE_STATES:
            changes.update(go_down(call, target))
        elif target_record["power_state"] == "Suspended":
            changes.update(drop_suspend_vdi(db, target_record))
            changes["power_state"] = "Halted"
        changes["allowed_operations"] = allowed_operations({**target_record, **changes})
        db.update("VM", target, changes)
        return "", {}

    return await vm_operation(call, snapshot, "revert", effect, check)


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

    return await vm_operation(call, vm, "destroy", effect)


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


def register(registry: Registry) -> None:
    vm = ("vm", "ref:VM")
    for name, params, handler in (
        ("VM.clone", [vm, ("new_name", "string")], vm_clone),
        ("VM.copy", [vm, ("new_name", "string"), ("sr", "ref:SR")], vm_copy),
        ("VM.snapshot", [vm, ("new_name", "string"), ("ignore_vdis", "set", [])], vm_snapshot),
        ("VM.checkpoint", [vm, ("new_name", "string")], vm_checkpoint),
        ("VM.revert", [("snapshot", "ref:VM")], vm_revert),
        ("VM.destroy", [("self", "ref:VM")], vm_destroy),
    ):
        registry.add(name, params, handler, async_capable=True)
