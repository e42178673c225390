"""Transforms of the pool and host classes."""

from __future__ import annotations

from collections.abc import Mapping
from sys import intern
from typing import TYPE_CHECKING, Any

from xod.cache.objects.values import (
    EMPTY_LIST,
    XoObject,
    as_list,
    as_map,
    to_number,
    to_timestamp,
)
from xod.xapi.codec import NULL_REF

if TYPE_CHECKING:
    from xod.cache.objects.pool import PoolObjects


def pool_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    cpu_info = as_map(r.get("cpu_info"))
    other = as_map(r.get("other_config"))
    master_id = pool.link(r.get("master"))
    master = pool.objects.get(master_id) if master_id else None
    restrictions = as_map(r.get("restrictions"))
    ha_srs = []
    for vdi_id in pool.links(r.get("ha_statefiles")):
        vdi = pool.objects.get(vdi_id)
        if vdi is not None:
            ha_srs.append(vdi["$SR"])
    obj: XoObject = {
        "type": "pool",
        "auto_poweron": other.get("auto_poweron") == "true",
        "crashDumpSr": pool.link(r.get("crash_dump_SR")),
        "current_operations": as_map(r.get("current_operations")),
        "default_SR": pool.link(r.get("default_SR")),
        "HA_enabled": bool(r.get("ha_enabled")),
        "haSrs": ha_srs or EMPTY_LIST,
        "master": master_id,
        "tags": as_list(r.get("tags")),
        "name_description": r.get("name_description", ""),
        "name_label": r.get("name_label") or (master["name_label"] if master else ""),
        "otherConfig": other,
        "cpus": {
            "cores": to_number(cpu_info.get("cpu_count")),
            "sockets": to_number(cpu_info.get("socket_count")),
        },
        "platform_version": pool.host_platform.get(r.get("master", "")),
        "suspendSr": pool.link(r.get("suspend_image_SR")),
        "zstdSupported": restrictions.get("restrict_zstd_export") == "false",
        "vtpmSupported": restrictions.get("restrict_vtpm") == "false",
        # XAPI's default (true) when the pool predates the field.
        "haRebootVmOnInternalShutdown": bool(r.get("ha_reboot_vm_on_internal_shutdown", True)),
        "migrationCompression": bool(r.get("migration_compression")),
    }
    pool.add_common_fields(obj, ref, object_id, r)
    obj["$pool"] = obj["$poolId"] = object_id
    return obj


_NO_IOMMU_INFO: dict[str, bool] = {}
_IOMMU = {True: {"iommu": True}, False: {"iommu": False}}


def _chipset_info(chipset: Mapping[str, str]) -> dict[str, bool]:
    iommu = chipset.get("iommu")
    return _NO_IOMMU_INFO if iommu is None else _IOMMU[iommu == "true"]


def _supplemental_packs(software: Mapping[str, str]) -> list[dict[str, str | None]]:
    """`software_version` entries `author:name` → `"description, version X"` are the host's
    supplemental packs (xo-server's reading of them)."""
    packs: list[dict[str, str | None]] = []
    for key, value in software.items():
        author, sep, name = key.partition(":")
        if not sep or ":" in name:
            continue
        description, _, version = value.partition(", ")
        packs.append(
            {
                "name": name,
                "description": description,
                "author": author,
                "version": version.split(" ")[1] if " " in version else None,
            }
        )
    return packs or EMPTY_LIST


def host_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    cpu_info = as_map(r.get("cpu_info"))
    other = as_map(r.get("other_config"))
    software = as_map(r.get("software_version"))
    license_params = as_map(r.get("license_params"))
    pool.metrics.watch_host(
        ref, intern(r.get("metrics", NULL_REF)), tuple(map(intern, r.get("certificates") or ()))
    )
    pool.host_platform[ref] = software.get("platform_version")
    boot_time = to_timestamp(other.get("boot_time"))
    if software.get("product_brand") == "XCP-ng":
        patch_time = to_number(other.get("rpm_patch_installation_time"))
        reboot_required = bool(boot_time is not None and patch_time and boot_time < patch_time)
    else:
        reboot_required = bool(r.get("updates_requiring_reboot"))
    pifs = pool.links(r.get("PIFs"))
    pcis = pool.links(r.get("PCIs"))
    pgpus = pool.links(r.get("PGPUs"))
    obj: XoObject = {
        "type": "host",
        "CPUs": cpu_info,
        "address": r.get("address", ""),
        "bios_strings": as_map(r.get("bios_strings")),
        "build": software.get("build_number"),
        "chipset_info": _chipset_info(as_map(r.get("chipset_info"))),
        "enabled": bool(r.get("enabled")),
        "controlDomain": pool.link(r.get("control_domain")),
        "cpus": {
            "cores": to_number(cpu_info.get("cpu_count")),
            "sockets": to_number(cpu_info.get("socket_count")),
        },
        "current_operations": as_map(r.get("current_operations")),
        "hostname": r.get("hostname", ""),
        "iscsiIqn": r.get("iscsi_iqn") or other.get("iscsi_iqn", ""),
        "zstdSupported": license_params.get("restrict_zstd_export") == "false",
        "license_params": license_params,
        "license_server": as_map(r.get("license_server")),
        "license_expiry": to_timestamp(license_params.get("expiry")),
        "logging": as_map(r.get("logging")),
        "name_description": r.get("name_description", ""),
        "name_label": r.get("name_label", ""),
        "multipathing": other.get("multipathing") == "true",
        "otherConfig": other,
        "patches": pool.links(r.get("patches")),
        "powerOnMode": r.get("power_on_mode", ""),
        "residentVms": pool.links(r.get("resident_VMs")),
        "startTime": boot_time,
        "agentStartTime": to_timestamp(other.get("agent_start_time")),
        "rebootRequired": reboot_required,
        "tags": as_list(r.get("tags")),
        "version": software.get("product_version"),
        "productBrand": software.get("product_brand"),
        "hvmCapable": any(c.startswith("hvm") for c in r.get("capabilities", ())),
        "supplementalPacks": _supplemental_packs(software),
        "PIFs": pifs,
        "$PIFs": pifs,
        "PCIs": pcis,
        "$PCIs": pcis,
        "PGPUs": pgpus,
        "$PGPUs": pgpus,
        "$PBDs": pool.links(r.get("PBDs")),
    }
    obj.update(pool.metrics.host_fields(ref))
    pool.add_common_fields(obj, ref, object_id, r)
    return obj
