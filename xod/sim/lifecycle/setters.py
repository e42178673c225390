"""Explicit setters: fields that are read-only in the datamodel (no implicit setter) but have
messages of their own (VCPUs, memory, HA priority; SR and VDI names), and VDI.destroy (which
takes the disk's unplugged VBDs with it and gives its size back to the SR)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xod.sim.db import Database
from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.lifecycle.devices import release
from xod.sim.registry import Registry


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
    for vbd in list(db.get("VDI", vdi)["VBDs"]):  # its (unplugged) VBDs go with it, as in xapi
        db.delete("VBD", vbd)
    release(db, db.delete("VDI", vdi))
    return ""


def register(registry: Registry) -> None:
    vm_value = ("self", "ref:VM")
    registry.add("VM.set_VCPUs_max", [vm_value, ("value", "int")], vm_set_vcpus_max)
    registry.add("VM.set_VCPUs_at_startup", [vm_value, ("value", "int")], vm_set_vcpus_at_startup)
    registry.add(
        "VM.set_VCPUs_number_live",
        [vm_value, ("nvcpu", "int")],
        vm_set_vcpus_number_live,
        async_capable=True,
    )
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
    registry.add("VDI.destroy", [("self", "ref:VDI")], vdi_destroy, async_capable=True)
