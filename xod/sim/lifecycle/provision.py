"""What creating and configuring a VM needs: VM.provision (a template's disk recipe), memory
limits, placement checks, allowed device slots, CD drives (insert/eject), device hot-plug and
the VM setters of read-only fields (start delay, vendor device, domain type)."""

from __future__ import annotations

import inspect
import xml.etree.ElementTree as ElementTree
from typing import Any

from xod.sim.db import Database
from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.implicit import CreateHook
from xod.sim.lifecycle.domains import LIVE_STATES, vm_operation
from xod.sim.registry import Registry
from xod.sim.schema import new_record
from xod.sim.values import NULL_REF, new_uuid

# xapi's device slots (xapi_vm_helpers.ml): 16 disk slots for HVM guests (PV guests have more,
# but a simulated pool never needs them), 7 network slots.
VBD_DEVICES = tuple(str(n) for n in range(16))
VIF_DEVICES = tuple(str(n) for n in range(7))
_MEMORY_ORDER = "Memory limits must satisfy: static_min <= dynamic_min <= dynamic_max <= static_max"


# -- VM.provision ------------------------------------------------------------------------------


def _recipe_disks(other_config: dict[str, str]) -> list[dict[str, str]]:
    """The <disk/> entries of other_config:disks (xapi's provision recipe)."""
    text = other_config.get("disks")
    if not text:
        return []
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        raise XapiFailure("INVALID_VALUE", "other_config:disks", text) from None
    return [dict(disk.attrib) for disk in root.iter("disk")]


def _default_sr(db: Database) -> str:
    pool = next(iter(db.tables["pool"].values()))
    return str(pool["default_SR"])


async def vm_provision(call: Call, vm: str) -> str:
    """Make the (cloned) template a VM: its recipe's disks are created, as xapi's provision does
    (the recipe stays; xo-server removes it first so xapi creates none)."""
    db = call.pool.db

    def effect() -> tuple[Any, dict[str, Any]]:
        record = db.get("VM", vm)
        for disk in _recipe_disks(record["other_config"]):
            sr_uuid = disk.get("sr", "")
            sr = db.by_uuid("SR", sr_uuid) if sr_uuid else _default_sr(db)
            vdi = db.insert(
                "VDI",
                new_record(
                    "VDI",
                    uuid=(vdi_uuid := new_uuid()),
                    location=vdi_uuid,
                    name_label=f"{record['name_label']} {disk.get('device', '0')}",
                    SR=sr,
                    virtual_size=int(disk.get("size", "0")),
                    type=disk.get("type", "system"),
                    managed=True,
                    allowed_operations=["clone", "copy", "snapshot", "destroy", "resize"],
                ),
            )
            _insert_vbd(db, vm, vdi, disk.get("device", "0"), disk.get("bootable") == "true")
        other = {k: v for k, v in record["other_config"].items() if k != "default_template"}
        return "", {"is_a_template": False, "is_default_template": False, "other_config": other}

    await vm_operation(call, vm, "provision", effect)
    return ""


def _insert_vbd(db: Database, vm: str, vdi: str, userdevice: str, bootable: bool) -> str:
    return db.insert(
        "VBD",
        new_record(
            "VBD",
            uuid=new_uuid(),
            VM=vm,
            VDI=vdi,
            userdevice=userdevice,
            bootable=bootable,
            mode="RW",
            type="Disk",
            empty=False,
            other_config={},
            allowed_operations=["attach"],
        ),
    )


# -- memory ------------------------------------------------------------------------------------


def _set_memory(db: Database, vm: str, *, halted_only: bool, **limits: int) -> dict[str, Any]:
    record = db.get("VM", vm)
    if halted_only and record["power_state"] != "Halted":
        raise XapiFailure("VM_BAD_POWER_STATE", vm, "halted", record["power_state"].lower())
    merged = {
        name: limits.get(name, record[f"memory_{name}"])
        for name in ("static_min", "dynamic_min", "dynamic_max", "static_max")
    }
    if not (
        0
        < merged["static_min"]
        <= merged["dynamic_min"]
        <= merged["dynamic_max"]
        <= merged["static_max"]
    ):
        raise XapiFailure("MEMORY_CONSTRAINT_VIOLATION", _MEMORY_ORDER)
    db.update("VM", vm, {f"memory_{name}": value for name, value in limits.items()})
    return record


def vm_set_memory_limits(
    call: Call, vm: str, static_min: int, static_max: int, dynamic_min: int, dynamic_max: int
) -> str:
    _set_memory(
        call.pool.db,
        vm,
        halted_only=True,
        static_min=static_min,
        static_max=static_max,
        dynamic_min=dynamic_min,
        dynamic_max=dynamic_max,
    )
    return ""


def vm_set_memory_dynamic_range(call: Call, vm: str, minimum: int, maximum: int) -> str:
    record = _set_memory(
        call.pool.db, vm, halted_only=False, dynamic_min=minimum, dynamic_max=maximum
    )
    if record["power_state"] in LIVE_STATES:  # the balloon driver follows the new target
        call.pool.db.update("VM", vm, {"memory_target": maximum})
    return ""


def _memory_setter(name: str, halted_only: bool) -> Any:
    def handler(call: Call, vm: str, value: int) -> str:
        _set_memory(call.pool.db, vm, halted_only=halted_only, **{name: value})
        return ""

    handler.__name__ = f"vm_set_memory_{name}"
    return handler


# -- placement ---------------------------------------------------------------------------------


def _boot_error(db: Database, vm: str, host: str) -> XapiFailure | None:
    """Why `vm` cannot start on `host` (xapi's assert_can_boot_here, in its order), or None."""
    record = db.get("VM", vm)
    host_record = db.get("host", host)
    if record["is_a_template"]:
        return XapiFailure("VM_IS_TEMPLATE", vm, "start")
    metrics = db.find("host_metrics", host_record["metrics"])
    if metrics is not None and not metrics["live"]:
        return XapiFailure("HOST_OFFLINE", host)
    if not host_record["enabled"]:
        return XapiFailure("HOST_DISABLED", host)
    reachable = {db.get("PBD", pbd)["SR"] for pbd in host_record["PBDs"]}
    for vbd in record["VBDs"]:
        vdi = db.find("VDI", db.get("VBD", vbd)["VDI"])
        if vdi is not None and vdi["SR"] not in reachable:
            return XapiFailure("VM_REQUIRES_SR", vm, vdi["SR"])
    networks = {db.get("PIF", pif)["network"] for pif in host_record["PIFs"]}
    for vif in record["VIFs"]:
        network = db.get("VIF", vif)["network"]
        if network not in networks and db.get("network", network)["PIFs"]:
            return XapiFailure("VM_REQUIRES_NETWORK", vm, network)
    if metrics is not None and record["power_state"] not in LIVE_STATES:
        needed = record["memory_static_max"]
        if needed > metrics["memory_free"]:
            return XapiFailure(
                "HOST_NOT_ENOUGH_FREE_MEMORY", str(needed), str(metrics["memory_free"])
            )
    return None


def vm_assert_can_boot_here(call: Call, vm: str, host: str) -> str:
    error = _boot_error(call.pool.db, vm, host)
    if error is not None:
        raise error
    return ""


def vm_get_possible_hosts(call: Call, vm: str) -> list[str]:
    db = call.pool.db
    db.get("VM", vm)
    return [host for host in db.tables["host"] if _boot_error(db, vm, host) is None]


# -- device slots ------------------------------------------------------------------------------


def _free_slots(db: Database, vm: str, cls: str, field: str, slots: tuple[str, ...]) -> list[str]:
    record = db.get("VM", vm)
    used = {db.get(cls, device)[field] for device in record[f"{cls}s"]}
    return [slot for slot in slots if slot not in used]


def vm_get_allowed_vbd_devices(call: Call, vm: str) -> list[str]:
    return _free_slots(call.pool.db, vm, "VBD", "userdevice", VBD_DEVICES)


def vm_get_allowed_vif_devices(call: Call, vm: str) -> list[str]:
    return _free_slots(call.pool.db, vm, "VIF", "device", VIF_DEVICES)


# -- CD drives and hot-plug --------------------------------------------------------------------


def _cd_drive(db: Database, vbd: str) -> dict[str, Any]:
    record = db.get("VBD", vbd)
    if record["type"] != "CD":
        raise XapiFailure("VBD_NOT_REMOVABLE_MEDIA", vbd)
    return record


def vbd_insert(call: Call, vbd: str, vdi: str) -> str:
    db = call.pool.db
    if not _cd_drive(db, vbd)["empty"]:
        raise XapiFailure("VBD_NOT_EMPTY", vbd)
    db.get("VDI", vdi)
    db.update("VBD", vbd, {"VDI": vdi, "empty": False})
    return ""


def vbd_eject(call: Call, vbd: str) -> str:
    db = call.pool.db
    if _cd_drive(db, vbd)["empty"]:
        raise XapiFailure("VBD_IS_EMPTY", vbd)
    db.update("VBD", vbd, {"VDI": NULL_REF, "empty": True})
    return ""


# -- setters of read-only VM fields ------------------------------------------------------------


def _halted_setter(field: str) -> Any:
    def handler(call: Call, vm: str, value: Any) -> str:
        db = call.pool.db
        record = db.get("VM", vm)
        if record["power_state"] != "Halted":
            raise XapiFailure("VM_BAD_POWER_STATE", vm, "halted", record["power_state"].lower())
        db.update("VM", vm, {field: value})
        return ""

    handler.__name__ = f"vm_set_{field}"
    return handler


def vm_set_start_delay(call: Call, vm: str, value: int) -> str:
    call.pool.db.get("VM", vm)
    call.pool.db.update("VM", vm, {"start_delay": value})
    return ""


# What XCP-ng's xscontainer plugin proposes as a template's cloud-init config (`%…%` are the
# plugin's placeholders, filled in by the client).
XSCONTAINER_DEFAULT_CONFIG = """#cloud-config

hostname: %XSVMNAMETOHOSTNAME%
ssh_authorized_keys:
  - ssh-rsa %XSCONTAINERRSAPUB%
coreos:
  units:
    - name: etcd.service
      command: start
    - name: fleet.service
      command: start
  etcd:
    name: %XSVMNAMETOHOSTNAME%
"""


def _with_xscontainer(previous: Any) -> Any:
    """host.call_plugin also answering xscontainer's get_config_drive_default ("True" + the
    config, as the plugin does); other plugins go to the handler registered before."""

    async def call_plugin(call: Call, host: str, plugin: str, fn: str, args: dict[str, str]) -> Any:
        if plugin == "xscontainer" and fn == "get_config_drive_default":
            db = call.pool.db
            metrics = db.find("host_metrics", db.get("host", host)["metrics"])
            if metrics is not None and not metrics["live"]:
                raise XapiFailure("HOST_OFFLINE", host)  # a plugin runs on its host
            try:
                db.by_uuid("VM", args.get("templateuuid", ""))
            except XapiFailure:
                raise XapiFailure(
                    "XENAPI_PLUGIN_FAILURE", fn, "Exception", "no such template"
                ) from None
            return "True" + XSCONTAINER_DEFAULT_CONFIG
        result = previous(call, host, plugin, fn, args)
        return await result if inspect.isawaitable(result) else result

    return call_plugin


def register(registry: Registry) -> None:
    vm = ("self", "ref:VM")
    plugin = registry.lookup("host.call_plugin")
    if plugin is not None:
        registry.add(
            "host.call_plugin",
            [(p.name, p.spec, p.default) for p in plugin.params],
            _with_xscontainer(plugin.handler),
            async_capable=plugin.async_capable,
            slave_ok=plugin.slave_ok,
            timed=plugin.timed,
        )
    registry.add("VM.provision", [vm], vm_provision, async_capable=True)
    registry.add(
        "VM.set_memory_limits",
        [
            vm,
            ("static_min", "int"),
            ("static_max", "int"),
            ("dynamic_min", "int"),
            ("dynamic_max", "int"),
        ],
        vm_set_memory_limits,
        async_capable=True,
    )
    registry.add(
        "VM.set_memory_dynamic_range",
        [vm, ("min", "int"), ("max", "int")],
        vm_set_memory_dynamic_range,
        async_capable=True,
    )
    for name, halted_only in (
        ("static_min", True),
        ("static_max", True),
        ("dynamic_min", False),
        ("dynamic_max", False),
    ):
        registry.add(
            f"VM.set_memory_{name}", [vm, ("value", "int")], _memory_setter(name, halted_only)
        )
    registry.add(
        "VM.assert_can_boot_here",
        [vm, ("host", "ref:host")],
        vm_assert_can_boot_here,
        async_capable=True,
    )
    registry.add("VM.get_possible_hosts", [vm], vm_get_possible_hosts, async_capable=True)
    registry.add("VM.get_allowed_VBD_devices", [vm], vm_get_allowed_vbd_devices)
    registry.add("VM.get_allowed_VIF_devices", [vm], vm_get_allowed_vif_devices)
    registry.add("VM.set_start_delay", [vm, ("value", "int")], vm_set_start_delay)
    registry.add(
        "VM.set_has_vendor_device", [vm, ("value", "bool")], _halted_setter("has_vendor_device")
    )
    registry.add(
        "VM.set_domain_type", [vm, ("value", "enum:domain_type")], _halted_setter("domain_type")
    )
    registry.add(
        "VBD.insert", [("self", "ref:VBD"), ("vdi", "ref:VDI")], vbd_insert, async_capable=True
    )
    registry.add("VBD.eject", [("self", "ref:VBD")], vbd_eject, async_capable=True)


def _refuse_taken_slot(db: Database, cls: str, ref: str, slot_field: str) -> None:
    """xapi refuses a second device on a VM's slot: DEVICE_ALREADY_EXISTS(slot). (The record
    was inserted by the generic create; it goes again.)"""
    record = db.get(cls, ref)
    vm = db.find("VM", record["VM"])
    slot = record[slot_field]
    if vm is not None and any(
        other != ref and db.get(cls, other)[slot_field] == slot for other in vm[f"{cls}s"]
    ):
        db.delete(cls, ref)
        raise XapiFailure("DEVICE_ALREADY_EXISTS", slot)


def _vbd_create_hook(call: Call, ref: str, record: dict[str, Any]) -> None:
    _refuse_taken_slot(call.pool.db, "VBD", ref, "userdevice")


def _vif_create_hook(call: Call, ref: str, record: dict[str, Any]) -> None:
    """A VIF on a free slot; xapi gives one created without a MAC a random locally
    administered MAC."""
    _refuse_taken_slot(call.pool.db, "VIF", ref, "device")
    if not record["MAC"]:
        digits = new_uuid().replace("-", "")[:10]
        mac = ":".join(["02", *(digits[i : i + 2] for i in range(0, 10, 2))])
        call.pool.db.update("VIF", ref, {"MAC": mac, "MAC_autogenerated": True})


CREATE_HOOKS: dict[str, CreateHook] = {
    "VBD": _vbd_create_hook,
    "VIF": _vif_create_hook,
}
