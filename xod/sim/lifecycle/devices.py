"""Device and disk messages: VIF and VBD plug/unplug/destroy, VIF network and locking changes,
and the VDI/SR storage calls (resize, snapshot, copy, pool_migrate, SR.scan).

Preconditions follow xapi's: plugging needs a running VM (VM_BAD_POWER_STATE), a device is
plugged or unplugged once (DEVICE_ALREADY_ATTACHED / DEVICE_ALREADY_DETACHED), an attached
device cannot be destroyed (OPERATION_NOT_ALLOWED), a VBD marked not unpluggable stays
(VBD_NOT_UNPLUGGABLE), a disk grows only within its SR's free space (SR_FULL) and never shrinks
(VDI_TOO_SMALL), and a live VDI migration needs a running VM using the disk
(VDI_NEEDS_VM_FOR_MIGRATE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xod.sim.db import Database
from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.implicit import CreateHook
from xod.sim.registry import ParamSpec, Registry
from xod.sim.values import NULL_REF, new_uuid, now

_LIVE = ("Running", "Paused")


# ---------------------------------------------------------------------------- VIF / VBD


def _plug(call: Call, cls: str, ref: str) -> str:
    db = call.pool.db
    record = db.get(cls, ref)
    vm = db.get("VM", record["VM"])
    if vm["power_state"] not in _LIVE:
        raise XapiFailure("VM_BAD_POWER_STATE", record["VM"], "running", vm["power_state"].lower())
    if record["currently_attached"]:
        raise XapiFailure("DEVICE_ALREADY_ATTACHED", ref)
    db.update(cls, ref, {"currently_attached": True})
    return ""


def _unplug(call: Call, cls: str, ref: str) -> str:
    db = call.pool.db
    record = db.get(cls, ref)
    if not record["currently_attached"]:
        raise XapiFailure("DEVICE_ALREADY_DETACHED", ref)
    if cls == "VBD" and not record["unpluggable"]:
        raise XapiFailure("VBD_NOT_UNPLUGGABLE", ref)
    db.update(cls, ref, {"currently_attached": False})
    return ""


def _destroy_device(call: Call, cls: str, ref: str) -> str:
    db = call.pool.db
    if db.get(cls, ref)["currently_attached"]:
        raise XapiFailure("OPERATION_NOT_ALLOWED", f"{cls} is currently attached")
    db.delete(cls, ref)
    return ""


def _device_messages(cls: str) -> list[tuple[str, Any]]:
    async def plug(call: Call, ref: str) -> str:
        await call.work()
        return _plug(call, cls, ref)

    async def unplug(call: Call, ref: str) -> str:
        await call.work()
        return _unplug(call, cls, ref)

    def destroy(call: Call, ref: str) -> str:
        return _destroy_device(call, cls, ref)

    return [
        (f"{cls}.plug", plug),
        (f"{cls}.unplug", unplug),
        (f"{cls}.unplug_force", unplug),
        (f"{cls}.destroy", destroy),
    ]


def vif_move(call: Call, vif: str, network: str) -> str:
    db = call.pool.db
    db.get("VIF", vif)
    db.get("network", network)
    db.update("VIF", vif, {"network": network})
    return ""


def vif_set_locking_mode(call: Call, vif: str, value: str) -> str:
    call.pool.db.get("VIF", vif)
    call.pool.db.update("VIF", vif, {"locking_mode": value})
    return ""


def _vif_set_allowed(field: str) -> Any:
    def handler(call: Call, vif: str, value: list[Any]) -> str:
        call.pool.db.get("VIF", vif)
        call.pool.db.update("VIF", vif, {field: [str(v) for v in value]})
        return ""

    return handler


# ---------------------------------------------------------------------------- VDI / SR


def _sr_free(db: Database, sr: str) -> int:
    record = db.get("SR", sr)
    return int(record["physical_size"]) - int(record["virtual_allocation"])


def _allocate(db: Database, sr: str, size: int) -> None:
    free = _sr_free(db, sr)
    if size > free:
        raise XapiFailure("SR_FULL", str(size), str(free))
    record = db.get("SR", sr)
    db.update("SR", sr, {"virtual_allocation": int(record["virtual_allocation"]) + size})


def _vdi_create_hook(call: Call, ref: str, record: dict[str, Any]) -> None:
    """A new disk takes its size from its SR's free space (SR_FULL: it is not created); xapi
    makes it a managed disk (an XO `VDI`, not `VDI-unmanaged`) stored under its uuid."""
    db = call.pool.db
    try:
        _allocate(db, record["SR"], int(record["virtual_size"]))
    except XapiFailure:
        db.delete("VDI", ref)
        raise
    db.update(
        "VDI",
        ref,
        {
            "managed": True,
            "location": record["uuid"],
            "allowed_operations": ["clone", "copy", "snapshot", "destroy", "resize"],
        },
    )


CREATE_HOOKS: dict[str, CreateHook] = {"VDI": _vdi_create_hook}


async def vdi_resize(call: Call, vdi: str, size: int) -> str:
    db = call.pool.db
    record = db.get("VDI", vdi)
    if size < record["virtual_size"]:
        raise XapiFailure("VDI_TOO_SMALL", vdi, str(record["virtual_size"]))
    _allocate(db, record["SR"], size - int(record["virtual_size"]))
    await call.work()
    db.update("VDI", vdi, {"virtual_size": size})
    return ""


def _copy_vdi(db: Database, vdi: str, sr: str, **changes: Any) -> str:
    record = db.get("VDI", vdi)
    _allocate(db, sr, int(record["virtual_size"]))
    uuid = new_uuid()
    copy = {
        **record,
        "uuid": uuid,
        "SR": sr,
        "location": uuid,
        "VBDs": [],
        "snapshots": [],
        "current_operations": {},
        "is_a_snapshot": False,
        "snapshot_of": NULL_REF,
        **changes,
    }
    return db.insert("VDI", copy)


async def vdi_snapshot(call: Call, vdi: str, driver_params: dict[str, Any]) -> str:
    db = call.pool.db
    record = db.get("VDI", vdi)
    await call.work()
    return _copy_vdi(
        db, vdi, record["SR"], is_a_snapshot=True, snapshot_of=vdi, snapshot_time=now()
    )


async def vdi_copy(call: Call, vdi: str, sr: str) -> str:
    db = call.pool.db
    db.get("VDI", vdi)
    db.get("SR", sr)
    await call.work()
    return _copy_vdi(db, vdi, sr)


async def vdi_pool_migrate(call: Call, vdi: str, sr: str, options: dict[str, Any]) -> str:
    """Live migration of a disk: the running VM's VBD ends up on a new VDI in `sr`."""
    db = call.pool.db
    record = db.get("VDI", vdi)
    db.get("SR", sr)
    vbds = [
        vbd
        for vbd in record["VBDs"]
        if db.get("VM", db.get("VBD", vbd)["VM"])["power_state"] in _LIVE
    ]
    if not vbds:
        raise XapiFailure("VDI_NEEDS_VM_FOR_MIGRATE", vdi)
    if record["SR"] == sr:
        return vdi
    await call.work()
    new = _copy_vdi(db, vdi, sr)
    for vbd in list(record["VBDs"]):
        db.update("VBD", vbd, {"VDI": new})
    release(db, record)
    db.delete("VDI", vdi)
    return new


def release(db: Database, record: dict[str, Any]) -> None:
    """A destroyed disk's size given back to its SR."""
    sr = db.find("SR", record["SR"])
    if sr is not None:
        allocation = max(0, int(sr["virtual_allocation"]) - int(record["virtual_size"]))
        db.update("SR", record["SR"], {"virtual_allocation": allocation})


async def sr_scan(call: Call, sr: str) -> str:
    """A scan finds no new disk in a simulated SR; it refreshes the SR's usage figures."""
    db = call.pool.db
    db.get("SR", sr)
    await call.work()
    used = sum(
        int(vdi["physical_utilisation"]) for vdi in db.tables["VDI"].values() if vdi["SR"] == sr
    )
    db.update("SR", sr, {"physical_utilisation": used})
    return ""


def register(registry: Registry) -> None:
    for cls in ("VIF", "VBD"):
        for name, handler in _device_messages(cls):
            registry.add(name, [("self", f"ref:{cls}")], handler, async_capable=True)
    vif = ("self", "ref:VIF")
    registry.add("VIF.move", [vif, ("network", "ref:network")], vif_move, async_capable=True)
    registry.add(
        "VIF.set_locking_mode", [vif, ("value", "enum:vif_locking_mode")], vif_set_locking_mode
    )
    registry.add("VIF.set_ipv4_allowed", [vif, ("value", "set")], _vif_set_allowed("ipv4_allowed"))
    registry.add("VIF.set_ipv6_allowed", [vif, ("value", "set")], _vif_set_allowed("ipv6_allowed"))
    vdi = ("self", "ref:VDI")
    messages: list[tuple[str, list[ParamSpec], Callable[..., Any]]] = [
        ("VDI.resize", [vdi, ("size", "int")], vdi_resize),
        ("VDI.snapshot", [vdi, ("driver_params", "map", {})], vdi_snapshot),
        ("VDI.copy", [vdi, ("sr", "ref:SR")], vdi_copy),
        (
            "VDI.pool_migrate",
            [vdi, ("sr", "ref:SR"), ("options", "map", {})],
            vdi_pool_migrate,
        ),
        ("SR.scan", [("self", "ref:SR")], sr_scan),
    ]
    for name, params, handler in messages:
        registry.add(name, params, handler, async_capable=True)
