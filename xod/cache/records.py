"""The XAPI record fields the cache reads, per class: the decode types of event snapshots
(handed to the XAPI client) and of a cold sync's records (kept as raw JSON until transformed).

A VM record has 90 fields and the transform reads 43 of them; the rest (large maps such as
`last_booted_record`, `other` metrics maps…) is skipped by the decoder without ever being
allocated. That makes a cold sync's decoding several times cheaper, and it leaves far less
garbage between the long-lived XO objects (garbage the allocator keeps as resident memory).

Every field any code path of `objects.py` reads for a class must be listed here (a test checks
it against the transform); values stay untyped (`Any`), exactly as they come off the wire.
"""

from __future__ import annotations

from types import GenericAlias
from typing import Any, TypedDict

import msgspec

_COMMON = ("uuid",)

# Wire class name → fields read by objects.py (its transform, ids, metrics fragments).
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "pool": (
        "cpu_info", "crash_dump_SR", "current_operations", "default_SR", "ha_enabled",
        "ha_reboot_vm_on_internal_shutdown", "ha_statefiles", "master",
        "migration_compression", "name_description", "name_label", "other_config",
        "restrictions", "suspend_image_SR", "tags",
    ),
    "host": (
        "PBDs", "PCIs", "PGPUs", "PIFs", "address", "bios_strings", "capabilities",
        "certificates", "chipset_info", "control_domain", "cpu_info", "current_operations",
        "enabled", "hostname", "iscsi_iqn", "license_params", "license_server", "logging",
        "metrics", "name_description", "name_label", "other_config", "patches",
        "power_on_mode", "resident_VMs", "software_version", "tags",
        "updates_requiring_reboot",
    ),
    "host_metrics": ("live", "memory_free", "memory_total"),
    "VM": (
        "HVM_boot_params", "HVM_boot_policy", "PV_args", "VBDs", "VCPUs_at_startup",
        "VCPUs_max", "VCPUs_params", "VGPUs", "VIFs", "VTPMs", "affinity", "bios_strings",
        "blocked_operations", "current_operations", "domain_type", "guest_metrics",
        "ha_restart_priority", "has_vendor_device", "is_a_snapshot", "is_a_template",
        "is_control_domain", "is_default_template", "memory_dynamic_max", "memory_dynamic_min",
        "memory_static_max", "memory_static_min", "metrics", "name_description", "name_label",
        "other_config", "parent", "platform", "power_state", "recommendations", "resident_on",
        "snapshot_of",
        "snapshot_time", "snapshots", "start_delay", "suspend_SR", "suspend_VDI", "tags",
        "xenstore_data",
    ),
    "VM_metrics": ("VCPUs_number", "install_time", "memory_actual", "start_time"),
    "VM_guest_metrics": (
        "PV_drivers_detected", "PV_drivers_up_to_date", "PV_drivers_version", "memory",
        "networks", "os_version", "other",
    ),
    "SR": (
        "PBDs", "VDIs", "content_type", "current_operations", "name_description", "name_label",
        "other_config", "physical_size", "physical_utilisation", "shared", "sm_config", "tags",
        "type", "virtual_allocation",
    ),
    "PBD": ("SR", "currently_attached", "device_config", "host", "other_config"),
    "VDI": (
        "SR", "VBDs", "cbt_enabled", "current_operations", "is_a_snapshot", "managed", "missing",
        "name_description", "name_label", "other_config", "physical_utilisation", "sm_config",
        "snapshot_of", "snapshot_time", "snapshots", "tags", "type", "virtual_size",
    ),
    "VBD": ("VDI", "VM", "bootable", "currently_attached", "device", "mode", "type", "userdevice"),
    "VIF": (
        "MAC", "MTU", "VM", "currently_attached", "device", "ipv4_allowed", "ipv6_allowed",
        "locking_mode", "network", "other_config", "qos_algorithm_params", "qos_algorithm_type",
    ),
    "network": (
        "MTU", "PIFs", "VIFs", "bridge", "current_operations", "default_locking_mode",
        "name_description", "name_label", "other_config", "purpose", "tags",
    ),
    "PIF": (
        "DNS", "IP", "IPv6", "MAC", "MTU", "VLAN", "bond_master_of", "bond_slave_of",
        "currently_attached", "device", "disallow_unplug", "gateway", "host",
        "ip_configuration_mode", "ipv6_configuration_mode", "management", "netmask", "network",
        "physical", "primary_address_type",
    ),
    "task": (
        "allowed_operations", "created", "current_operations", "finished", "name_description",
        "name_label", "other_config", "progress", "resident_on", "result", "status",
    ),
    "message": ("body", "name", "obj_uuid", "timestamp"),
    "Certificate": ("fingerprint", "not_after"),
}  # fmt: skip


def _record_type(cls: str, fields: tuple[str, ...]) -> Any:
    return TypedDict(  # type: ignore[operator]  # a record type built at run time from its fields
        f"{cls}Record", dict.fromkeys((*_COMMON, *fields), Any), total=False
    )


# Wire class name → its record type; and the same by lower-case event class name.
RECORD_TYPES: dict[str, Any] = {cls: _record_type(cls, f) for cls, f in RECORD_FIELDS.items()}
SNAPSHOT_TYPES: dict[str, Any] = {cls.lower(): t for cls, t in RECORD_TYPES.items()}


def all_records_type(cls: str) -> Any:
    """`<cls>.get_all_records`' result type (ref → record), or None for an unknown class."""
    record_type = RECORD_TYPES.get(cls)
    return None if record_type is None else GenericAlias(dict, (str, record_type))


# A cold sync keeps each record as raw JSON (a view into the answer's body) and decodes it only
# when the transform reaches it: each record's decode garbage is then freed before the next
# record is decoded, instead of being interleaved with the kept values of every other record
# (Python's allocator cannot give back memory pages that hold a single live value).
RAW_RECORDS_TYPE = dict[str, msgspec.Raw]

# The fields an object's id depends on (`PoolObjects._id_for`), decoded in a first pass over
# every class so that links between objects of the same load resolve.
ID_FIELDS: dict[str, tuple[str, ...]] = {
    "VM": ("is_a_template", "is_a_snapshot", "is_control_domain", "is_default_template",
           "other_config"),
}  # fmt: skip

_RECORD_DECODERS = {
    cls.lower(): msgspec.json.Decoder(record_type) for cls, record_type in RECORD_TYPES.items()
}
_ID_DECODERS = {
    cls.lower(): msgspec.json.Decoder(_record_type(f"{cls}Id", ID_FIELDS.get(cls, ())))
    for cls in RECORD_FIELDS
}


def decode_record(event_class: str, record: Any) -> Any:
    """A record still in raw JSON decoded with its (lower-case) class's type; others as is."""
    if type(record) is msgspec.Raw:
        return _RECORD_DECODERS[event_class].decode(record)
    return record


def decode_id_fields(event_class: str, record: Any) -> Any:
    """Just the fields an object's id depends on, from a record still in raw JSON; others as is."""
    if type(record) is msgspec.Raw:
        return _ID_DECODERS[event_class].decode(record)
    return record
