"""Transforms of the storage classes: SR, PBD, VDI, VBD."""

from __future__ import annotations

from sys import intern
from typing import TYPE_CHECKING, Any

from xod.cache.objects.values import EMPTY_MAP, XoObject, as_list, as_map, to_int, to_timestamp

if TYPE_CHECKING:
    from xod.cache.objects.pool import PoolObjects


ALLOCATION_BY_TYPE = {
    "ext": "thin",
    "file": "thin",
    "hba": "thick",
    "iscsi": "thick",
    "lvhd": "thick",
    "lvhdofcoe": "thick",
    "lvhdohba": "thick",
    "lvhdoiscsi": "thick",
    "lvm": "thick",
    "lvmofcoe": "thick",
    "lvmohba": "thick",
    "lvmoiscsi": "thick",
    "nfs": "thin",
    "ocfs": "thick",
    "ocfsohba": "thick",
    "ocfsoiscsi": "thick",
    "rawhba": "thick",
    "rawiscsi": "thick",
    "shm": "thin",
    "smb": "thin",
    "udev": "thick",
    "xosan": "thin",
    "zfs": "thin",
}


def is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return "password" in lowered or "secret" in lowered


def obfuscate(config: dict[str, Any]) -> dict[str, Any]:
    if not config:
        return EMPTY_MAP
    if not any(is_sensitive(k) for k in config):
        return config
    return {k: ("* obfuscated *" if is_sensitive(k) else v) for k, v in config.items()}


def sr_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    sr_type = intern(r.get("type", ""))
    shared = bool(r.get("shared"))
    pbds = pool.links(r.get("PBDs"))
    container = pool.pool_id
    if not shared and pbds:
        pbd = pool.objects.get(pbds[0])
        container = pbd["host"] if pbd is not None else pool.pool_id
    other = as_map(r.get("other_config"))
    obj: XoObject = {
        "type": "SR",
        "content_type": intern(r.get("content_type", "")),
        "physical_usage": to_int(r.get("physical_utilisation", 0)),
        "current_operations": as_map(r.get("current_operations")),
        "inMaintenanceMode": "xo:maintenanceState" in other,
        "name_description": r.get("name_description", ""),
        "name_label": r.get("name_label", ""),
        "size": to_int(r.get("physical_size", 0)),
        "shared": shared,
        "SR_type": sr_type,
        "tags": as_list(r.get("tags")),
        "usage": to_int(r.get("virtual_allocation", 0)),
        "VDIs": pool.links(r.get("VDIs")),
        "other_config": other,
        "sm_config": as_map(r.get("sm_config")),
        "$container": container,
        "$PBDs": pbds,
    }
    pool.add_common_fields(obj, ref, object_id, r)
    allocation = ALLOCATION_BY_TYPE.get(sr_type)
    if allocation is not None:  # XO leaves it out for other SR types
        obj["allocationStrategy"] = allocation
    return obj


def pbd_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    obj: XoObject = {
        "type": "PBD",
        "attached": bool(r.get("currently_attached")),
        "host": pool.link(r.get("host")),
        "SR": pool.link(r.get("SR")),
        "device_config": obfuscate(as_map(r.get("device_config"))),
        "otherConfig": as_map(r.get("other_config")),
    }
    pool.add_common_fields(obj, ref, object_id, r)
    return obj


# Parents followed at most (a VHD chain is far shorter; this only guards against a loop).
_CHAIN_LIMIT = 64


def chain_physical_usage(pool: PoolObjects, usage: int, parent: str | None) -> int:
    """The space a VDI and its VHD parents (base copies, by uuid) take on the SR."""
    objects = pool.objects
    for _ in range(_CHAIN_LIMIT):
        vdi = objects.get(parent) if parent is not None else None
        if vdi is None:
            break
        usage += vdi["usage"]
        parent = vdi.get("parent")
    return usage


def vdi_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    sm_config = as_map(r.get("sm_config"))
    usage = to_int(r.get("physical_utilisation", 0))
    parent = sm_config.get("vhd-parent")
    if r.get("is_a_snapshot"):
        vdi_type = "VDI-snapshot"
    elif not r.get("managed", True):
        vdi_type = "VDI-unmanaged"
    else:
        vdi_type = "VDI"
    obj: XoObject = {
        "type": vdi_type,
        "missing": bool(r.get("missing")),
        "name_description": r.get("name_description", ""),
        "name_label": r.get("name_label", ""),
        "size": to_int(r.get("virtual_size", 0)),
        "snapshots": pool.links(r.get("snapshots")),
        "tags": as_list(r.get("tags")),
        "usage": usage,
        "chainPhysicalUsage": chain_physical_usage(pool, usage, parent),
        "VDI_type": intern(r.get("type", "user")),
        "cbt_enabled": bool(r.get("cbt_enabled")),
        "current_operations": as_map(r.get("current_operations")),
        "other_config": as_map(r.get("other_config")),
        "$SR": pool.link(r.get("SR")),
        "$VBDs": pool.links(r.get("VBDs")),
    }
    if vdi_type == "VDI-snapshot":
        obj["snapshot_time"] = to_timestamp(r.get("snapshot_time"))
        obj["$snapshot_of"] = pool.link(r.get("snapshot_of"))
    pool.add_common_fields(obj, ref, object_id, r)
    if parent is not None:  # last and only when set, as XO (see sharing.compact)
        obj["parent"] = parent
    return obj


def vbd_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    obj: XoObject = {
        "type": "VBD",
        "attached": bool(r.get("currently_attached")),
        "bootable": bool(r.get("bootable")),
        "device": intern(r["device"]) if r.get("device") else None,
        "is_cd_drive": r.get("type") == "CD",
        "position": intern(str(r.get("userdevice", ""))),
        "read_only": r.get("mode") == "RO",
        "VDI": pool.link(r.get("VDI")),
        "VM": pool.link(r.get("VM")),
    }
    pool.add_common_fields(obj, ref, object_id, r)
    return obj
