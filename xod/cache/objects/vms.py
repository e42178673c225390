"""Transform of the VM class (VMs, snapshots, templates, control domains)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from functools import lru_cache
from sys import intern
from typing import TYPE_CHECKING, Any

from xod.cache.objects.sharing import shared_list, shared_map
from xod.cache.objects.values import (
    EMPTY_LIST,
    EMPTY_MAP,
    XoObject,
    as_map,
    json_or_none,
    to_int,
    to_number,
    to_timestamp,
)
from xod.xapi.codec import NULL_REF

if TYPE_CHECKING:
    from xod.cache.objects.pool import PoolObjects


@lru_cache(maxsize=1024)
def _template_disks(xml: str) -> list[dict[str, Any]]:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return EMPTY_LIST
    if root.tag != "provision":
        return EMPTY_LIST
    disks = []
    for disk in root.iter("disk"):
        attributes: dict[str, Any] = dict(disk.attrib)
        attributes["bootable"] = attributes.get("bootable") == "true"
        attributes["size"] = to_number(attributes.get("size"))
        attributes["SR"] = attributes.pop("sr", None)
        disks.append(attributes)
    return disks


# `platform['device_id']` of Windows VMs (the Xen PV device they are given).
WINDOWS_DEVICE_ID = "0002"


@lru_cache(maxsize=256)
def is_firmware_supported(recommendations: str, firmware: str | None) -> bool:
    """False when the VM's recommendations restrict its boot firmware (`supports-uefi` = no)."""
    if not recommendations:
        return True
    try:
        root = ElementTree.fromstring(recommendations)
    except ElementTree.ParseError:
        return True
    field = f"supports-{firmware}"
    return all(r.get("value") != "no" for r in root.iter("restriction") if r.get("field") == field)


def is_nested_virt_enabled(platform: Mapping[str, str]) -> bool:
    """`nested-virt` (XAPI 23+) or its older name `exp-nested-hvm`."""
    return platform.get("nested-virt") == "true" or platform.get("exp-nested-hvm") == "true"


def is_default_template(record: Mapping[str, Any]) -> bool:
    return bool(record.get("is_default_template")) or (
        as_map(record.get("other_config")).get("default_template") == "true"
    )


def vm_domain_type(record: Mapping[str, Any]) -> str:
    domain_type = record.get("domain_type", "unspecified")
    if domain_type == "pv_in_pvh":
        return "pvh"
    if domain_type and domain_type != "unspecified":
        return intern(domain_type)
    return "pv" if record.get("HVM_boot_policy", "") == "" else "hvm"


def vm_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    other = as_map(r.get("other_config"))
    platform = as_map(r.get("platform"))
    power_state = intern(r.get("power_state", "Halted"))
    domain_type = vm_domain_type(r)
    is_hvm = domain_type == "hvm"

    if r.get("is_control_domain"):
        vm_type = "VM-controller"
    elif r.get("is_a_snapshot"):
        vm_type = "VM-snapshot"
    elif r.get("is_a_template"):
        vm_type = "VM-template"
    else:
        vm_type = "VM"

    resource_set = other.get("xo:resource_set")
    if resource_set:
        resource_set = json_or_none(resource_set)
    task_ops = r.get("current_operations")
    if task_ops:
        get = pool.id_of
        current_operations = {i: op for t, op in task_ops.items() if (i := get(t)) is not None}
    else:
        current_operations = EMPTY_MAP
    uuid = r.get("uuid", "")
    creation = json_or_none(other.get(f"xo:{uuid[:8]}")) if uuid else None
    creation = creation.get("creation") if isinstance(creation, dict) else None

    resident_on = r.get("resident_on", NULL_REF)
    vbds = pool.links(r.get("VBDs"))
    container = pool.link(resident_on) if resident_on != NULL_REF else halted_container(pool, vbds)

    # Interned, as the metrics fragments' keys: each ref is kept once.
    metrics_ref = intern(r.get("metrics", NULL_REF))
    guest_ref = intern(r.get("guest_metrics", NULL_REF))
    vcpus_at_startup = to_int(r.get("VCPUs_at_startup", 0))
    # Only VMs (not templates, snapshots, dom0) are assessed for vulnerabilities (metrics.py).
    windows = platform.get("device_id") == WINDOWS_DEVICE_ID if vm_type == "VM" else None
    pool.metrics.watch_vm(ref, metrics_ref, guest_ref, vcpus_at_startup, windows)
    vgpus = pool.links(r.get("VGPUs"))

    obj: XoObject = {
        "type": vm_type,
        "auto_poweron": other.get("auto_poweron") == "true",
        "bios_strings": shared_map(r.get("bios_strings")),
        "blockedOperations": shared_map(r.get("blocked_operations")),
        "boot": shared_map(r.get("HVM_boot_params")),
        "CPUs": {"max": to_int(r.get("VCPUs_max", 0)), "number": vcpus_at_startup},
        "current_operations": current_operations,
        "expNestedHvm": platform.get("exp-nested-hvm") == "true",
        "isNestedVirtEnabled": is_nested_virt_enabled(platform),
        "viridian": platform.get("viridian") == "true",
        "high_availability": r.get("ha_restart_priority", ""),
        "isFirmwareSupported": is_firmware_supported(
            r.get("recommendations") or "", as_map(r.get("HVM_boot_params")).get("firmware")
        ),
        "memory": {
            "dynamic": shared_list(
                [to_int(r.get("memory_dynamic_min", 0)), to_int(r.get("memory_dynamic_max", 0))]
            ),
            "static": shared_list(
                [to_int(r.get("memory_static_min", 0)), to_int(r.get("memory_static_max", 0))]
            ),
        },
        "name_description": r.get("name_description", ""),
        "name_label": r.get("name_label", ""),
        "needsVtpm": platform.get("vtpm") == "true",
        "other": other,
        "power_state": power_state,
        "hasVendorDevice": bool(r.get("has_vendor_device")),
        "snapshots": pool.links(r.get("snapshots")),
        "startDelay": to_int(r.get("start_delay", 0)),
        "secureBoot": platform.get("secureboot") == "true",
        "tags": shared_list(r.get("tags")),
        "VIFs": pool.links(r.get("VIFs")),
        "VTPMs": pool.links(r.get("VTPMs")),
        "virtualizationMode": domain_type,
        "$container": container,
        "$VBDs": vbds,
        "VGPUs": vgpus,
        "$VGPUs": vgpus,
        "xenStoreData": shared_map(r.get("xenstore_data")),
    }
    # Fields XO leaves out when they have no value (undefined in xo-server: no key at all).
    optional = (
        ("affinityHost", pool.link(r.get("affinity"))),
        ("creation", creation),
        ("notes", other.get("xo:notes")),
        ("parent", pool.link(r.get("parent"))),
        ("resourceSet", resource_set if isinstance(resource_set, str) else None),
        ("suspendSr", pool.link(r.get("suspend_SR"))),
        ("nicType", platform.get("nic_type")),
    )
    for key, value in optional:
        if value is not None:
            obj[key] = value
    obj.update(pool.metrics.vm_fields(ref, obj))
    if is_hvm:
        obj["vga"] = platform.get("vga", "cirrus")
        obj["videoram"] = platform.get("videoram", 4)
    cores_per_socket = platform.get("cores-per-socket")
    if cores_per_socket is not None:
        obj["coresPerSocket"] = to_number(cores_per_socket)

    if vm_type == "VM-snapshot":
        obj["snapshot_time"] = to_timestamp(r.get("snapshot_time"))
        obj["$snapshot_of"] = pool.link(r.get("snapshot_of"))
        obj["suspendVdi"] = pool.link(r.get("suspend_VDI"))
    elif vm_type == "VM-template":
        disks = other.get("disks")
        methods = other.get("install-methods")
        obj["isDefaultTemplate"] = is_default_template(r)
        template_info = {
            "disks": _template_disks(disks) if disks else EMPTY_LIST,
            "install_methods": methods.split(",") if methods else EMPTY_LIST,
        }
        for key, field in (("arch", "install-arch"), ("install_repository", "install-repository")):
            if field in other:
                template_info[key] = other[field]
        obj["template_info"] = template_info

    vcpus_params = r.get("VCPUs_params")
    if vcpus_params:
        if vcpus_params.get("cap"):
            obj["cpuCap"] = to_number(vcpus_params["cap"])
        if vcpus_params.get("mask"):
            obj["cpuMask"] = [to_number(c) for c in vcpus_params["mask"].split(",")]
        if vcpus_params.get("weight"):
            obj["cpuWeight"] = to_number(vcpus_params["weight"])
    if not is_hvm:
        obj["PV_args"] = r.get("PV_args", "")
    pool.add_common_fields(obj, ref, object_id, r)
    return obj


def halted_container(pool: PoolObjects, vbd_ids: list[str]) -> str | None:
    """A halted VM lives in its pool, unless one of its VDIs is on a local SR: then its host."""
    objects = pool.objects
    for vbd_id in vbd_ids:
        vbd = objects.get(vbd_id)
        vdi = objects.get(vbd["VDI"]) if vbd is not None and vbd["VDI"] else None
        sr = objects.get(vdi["$SR"]) if vdi is not None and vdi["$SR"] else None
        if sr is not None and not sr["shared"] and sr["$PBDs"]:
            pbd = objects.get(sr["$PBDs"][0])
            host: str | None = None if pbd is None else pbd["host"]
            if host is not None:
                return host
    return pool.pool_id
