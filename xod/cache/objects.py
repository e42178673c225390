"""XAPI record → Xen Orchestra object (pure, no I/O).

One `PoolObjects` per pool turns `get_all_records` results and `event.from` events into the XO
objects of xo-jsonrpc.md §4, as xo-server's `xapi-object-to-xo.mjs` does. It keeps the XO objects
and the little the transform needs (ref → id, metrics fragments, parent links), never the raw
XAPI records: those are dropped as soon as they are transformed.

XO objects are plain dicts treated as frozen snapshots: a change builds a new dict, and empty or
equal maps and lists are shared between objects to save memory (`shared_map`), so nobody may
mutate an object in place. Objects of up to 30 keys (all but VMs and hosts) are key-sharing dicts
(`compact`), half the size of ordinary ones.
"""

from __future__ import annotations

import calendar
import re
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

import orjson

from xod.cache.records import decode_id_fields, decode_record
from xod.xapi.codec import NULL_REF

ONE_GIB = 1024**3

XoObject = dict[str, Any]
Changes = dict[str, XoObject | None]

# Shared empty containers (objects are immutable, see the module docstring).
EMPTY_MAP: dict = {}
EMPTY_LIST: list = []

# XAPI classes the cache fetches (wire names, as in `<class>.get_all_records`).
SYNCED_CLASSES: tuple[str, ...] = (
    "pool",
    "host",
    "host_metrics",
    "VM",
    "VM_metrics",
    "VM_guest_metrics",
    "SR",
    "PBD",
    "VDI",
    "VBD",
    "VIF",
    "network",
    "PIF",
    "task",
    "message",
)
METRICS_CLASSES = ("host_metrics", "vm_metrics", "vm_guest_metrics")
# Order in which one batch is transformed (lower-case event class names): a transform may read the
# XO objects of the classes before it (pool → master host, SR → its first PBD, halted VM → its
# VBDs/VDIs/SRs, VM.current_operations → tasks).
OBJECT_CLASSES = (
    "task",
    "host",
    "pool",
    "network",
    "pif",
    "pbd",
    "sr",
    "vdi",
    "vbd",
    "vif",
    "vm",
    "message",
)

# The XO object types of each class's objects.
XO_TYPES: dict[str, tuple[str, ...]] = {
    "task": ("task",),
    "host": ("host",),
    "pool": ("pool",),
    "network": ("network",),
    "pif": ("PIF",),
    "pbd": ("PBD",),
    "sr": ("SR",),
    "vdi": ("VDI", "VDI-snapshot", "VDI-unmanaged"),
    "vbd": ("VBD",),
    "vif": ("VIF",),
    "vm": ("VM", "VM-controller", "VM-snapshot", "VM-template"),
    "message": ("message",),
}

_intern = sys.intern


# ---------------------------------------------------------------------------------------------
# Value helpers


def to_int(value: Any) -> int:
    """XAPI int → Python int (XML-RPC sends 64-bit ints as strings)."""
    return value if type(value) is int else int(value)


def to_number(value: Any) -> int | float | None:
    """JS `+value` for strings found in maps (`"100"`, `"0.5"`); integral values become ints."""
    if value is None:
        return None
    if type(value) is int:
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() else number


@lru_cache(maxsize=16384)
def _parse_timestamp(value: str) -> int | None:
    if len(value) >= 17 and value[8] == "T":
        try:
            seconds = calendar.timegm(
                (
                    int(value[0:4]),
                    int(value[4:6]),
                    int(value[6:8]),
                    int(value[9:11]),
                    int(value[12:14]),
                    int(value[15:17]),
                    0,
                    0,
                    0,
                )
            )
        except ValueError:
            return None
        return seconds or None
    number = to_number(value)
    if number is None:
        return None
    return int(number) or None


def to_timestamp(value: Any) -> int | None:
    """XAPI datetime (`YYYYMMDDTHH:MM:SSZ`) or numeric string → seconds; `None` for the epoch."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return _parse_timestamp(value)
    if isinstance(value, int | float):
        return int(value) or None
    return None


def _map(value: Any) -> dict:
    return value if value else EMPTY_MAP


def _list(value: Any) -> list:
    return value if value else EMPTY_LIST


# One copy of each distinct value that many objects hold (a boot order, a CPUs map, memory
# sizes…): objects are immutable, so equal values can be the same object. Values are told apart
# by their JSON form, so only values clients cannot tell apart are merged (`true` and `1` are
# not), and only with values of the same kind (one table per kind). A table is emptied when
# full, which bounds it whatever the churn: later equal values are merged again from then on.
_SHARED_LIMIT = 4096
_shared_maps: dict[bytes, dict] = {}
_shared_lists: dict[bytes, list] = {}
_Value = TypeVar("_Value", dict, list)


def _shared(table: dict[bytes, _Value], value: _Value) -> _Value:
    try:
        key = orjson.dumps(value)
    except TypeError:  # not JSON (a non-string map key…): kept as is
        return value
    kept = table.get(key)
    if kept is None:
        if len(table) >= _SHARED_LIMIT:
            table.clear()
        # A copy: whoever made `value` (a test's record…) may still change it.
        kept = table[key] = value.copy()
    return kept


def shared_map(value: Any) -> dict:
    """A map many objects may hold with the same content (XAPI map fields, CPUs, memory)."""
    return _shared(_shared_maps, value) if value else EMPTY_MAP


def shared_list(value: Any) -> list:
    return _shared(_shared_lists, value) if value else EMPTY_LIST


class _Shape:
    """Objects of one type, whose instances only lend their `__dict__`."""


_SHAPES: dict[str, type[_Shape]] = {}
# CPython shares one key table between instance dicts of up to 30 keys.
_SHARED_KEYS_MAX = 30


def compact(obj: XoObject) -> XoObject:
    """The same object in a dict sharing its key table with the other objects of its type
    (CPython's key-sharing instance dicts, filled in the same key order): a VBD's 14 keys then
    cost ~220 bytes, not ~470. Bigger objects (VMs, hosts) are returned as they are."""
    if len(obj) > _SHARED_KEYS_MAX:
        return obj
    object_type = obj["type"]
    shape = _SHAPES.get(object_type)
    if shape is None:
        shape = _SHAPES[object_type] = type(f"_Shape_{object_type}", (_Shape,), {})
    shared = shape().__dict__
    # Key by key (from the items), as `update(dict)` would copy the key table.
    shared.update(obj.items())
    return shared


def _is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return "password" in lowered or "secret" in lowered


def _obfuscate(config: dict) -> dict:
    if not config:
        return EMPTY_MAP
    if not any(_is_sensitive(k) for k in config):
        return config
    return {k: ("* obfuscated *" if _is_sensitive(k) else v) for k, v in config.items()}


_NETWORK_KEY = re.compile(r"^(\d+)/(ip|ipv4|ipv6)(?:/(\d+))?$")


def normalize_networks(networks: Mapping[str, str]) -> dict[str, str]:
    """Guest-metrics networks, legacy `N/ip` keys renamed `N/ipv4/0` (XO's normalizeVmNetworks)."""
    if not networks:
        return EMPTY_MAP
    result: dict[str, str] = {}
    for key, address in networks.items():
        match = _NETWORK_KEY.match(key)
        if match is None:
            continue
        device, family, index = match.groups()
        if family == "ip":
            family = "ipv4"
        result[_intern(f"{device}/{family}/{index or 0}")] = address
    return result


def main_ip_address(addresses: Mapping[str, str]) -> str | None:
    """First IPv4 address by device/index order, else the first IPv6 one."""
    if not addresses:
        return None
    keys = sorted(addresses, key=lambda k: [int(p) if p.isdigit() else p for p in k.split("/")])
    for key in keys:
        if "/ipv4/" in key and addresses[key]:
            return addresses[key]
    for key in keys:
        if "/ipv6/" in key and addresses[key]:
            return addresses[key]
    return None


@lru_cache(maxsize=1024)
def _template_disks(xml: str) -> list[dict]:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return EMPTY_LIST
    if root.tag != "provision":
        return EMPTY_LIST
    disks = []
    for disk in root.iter("disk"):
        attributes = dict(disk.attrib)
        attributes["bootable"] = attributes.get("bootable") == "true"
        attributes["size"] = to_number(attributes.get("size"))
        attributes["SR"] = attributes.pop("sr", None)
        disks.append(attributes)
    return disks


def _json_or_none(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def is_default_template(record: Mapping[str, Any]) -> bool:
    return bool(record.get("is_default_template")) or (
        _map(record.get("other_config")).get("default_template") == "true"
    )


def vm_domain_type(record: Mapping[str, Any]) -> str:
    domain_type = record.get("domain_type", "unspecified")
    if domain_type == "pv_in_pvh":
        return "pvh"
    if domain_type and domain_type != "unspecified":
        return _intern(domain_type)
    return "pv" if record.get("HVM_boot_policy", "") == "" else "hvm"


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


# ---------------------------------------------------------------------------------------------
# Metrics fragments: the few metrics fields a parent's XO object shows, computed once per
# metrics record so that a metrics change only patches its parent.

# VM_metrics → (VCPUs_number, memory_actual, start_time, install_time)
VmMetrics = tuple[int, int, int | None, int | None]
# VM_guest_metrics → (os_version, PV version "a.b.c-d" | None, (major, minor) | None,
#                     up_to_date, detected, static-ip feature, addresses, main ip, used, total)
GuestMetrics = tuple[Any, ...]
# host_metrics → (memory_total, memory_free, live)
HostMetrics = tuple[int, int, bool]


def vm_metrics_fragment(record: Mapping[str, Any]) -> VmMetrics:
    return (
        to_int(record.get("VCPUs_number", 0)),
        to_int(record.get("memory_actual", 0)),
        to_timestamp(record.get("start_time")),
        to_timestamp(record.get("install_time")),
    )


def guest_metrics_fragment(record: Mapping[str, Any]) -> GuestMetrics:
    pv = _map(record.get("PV_drivers_version"))
    major, minor = pv.get("major"), pv.get("minor")
    has_version = major is not None and minor is not None
    version = None
    if has_version:
        major, minor = _intern(major), _intern(minor)
        version = _intern(f"{major}.{minor}.{pv.get('micro')}-{pv.get('build')}")
    detected = record.get("PV_drivers_detected")
    if detected is None:
        detected = has_version
    addresses = normalize_networks(_map(record.get("networks")))
    memory = _map(record.get("memory"))
    return (
        shared_map(record.get("os_version")),
        version,
        (major, minor) if has_version else None,
        bool(record.get("PV_drivers_up_to_date")),
        bool(detected),
        _map(record.get("other")).get("feature-static-ip-setting") == "1",
        addresses,
        main_ip_address(addresses),
        to_number(memory.get("used")),
        to_number(memory.get("total")),
    )


def host_metrics_fragment(record: Mapping[str, Any]) -> HostMetrics:
    return (
        to_int(record.get("memory_total", 0)),
        to_int(record.get("memory_free", 0)),
        bool(record.get("live")),
    )


def vm_metrics_fields(
    vm: Mapping[str, Any],
    vcpus_at_startup: int,
    metrics: VmMetrics | None,
    guest: GuestMetrics | None,
) -> dict[str, Any]:
    """The VM fields that depend on VM_metrics / VM_guest_metrics, from the VM's own fields."""
    running = vm["power_state"] in ("Running", "Paused")
    is_template = vm["type"] == "VM-template"
    dynamic = vm["memory"]["dynamic"]
    dynamic_max = dynamic[1]

    xen_tools: Any = None
    if running and metrics is not None:
        if guest is None or guest[2] is None:
            xen_tools = False
        else:
            major, minor = guest[2]
            xen_tools = shared_map(
                {
                    "major": to_number(major),
                    "minor": to_number(minor),
                    "version": to_number(f"{major}.{minor}"),
                }
            )

    if is_template or not (running and metrics is not None and xen_tools):
        cpus_number = vcpus_at_startup
    else:
        cpus_number = metrics[0]  # type: ignore[index]

    memory = {"dynamic": dynamic, "static": vm["memory"]["static"]}
    if not running:
        memory["size"] = dynamic_max
    elif guest is not None and guest[8]:
        memory["usage"] = guest[8]
        memory["size"] = guest[9]
    elif metrics is not None:
        memory["size"] = metrics[1]
    else:
        memory["size"] = dynamic_max

    tools_known = running and metrics is not None and guest is not None
    return {
        "addresses": guest[6] if guest is not None else EMPTY_MAP,
        "mainIpAddress": guest[7] if guest is not None else None,
        "CPUs": shared_map({"max": vm["CPUs"]["max"], "number": cpus_number}),
        "memory": shared_map(memory),
        "installTime": metrics[3] if metrics is not None else None,
        "startTime": metrics[2] if metrics is not None else None,
        "os_version": guest[0] if guest is not None else None,
        "xenTools": xen_tools,
        "managementAgentDetected": bool(tools_known and (guest[2] is not None or guest[5])),  # type: ignore[index]
        "pvDriversDetected": bool(tools_known and guest[4]),  # type: ignore[index]
        "pvDriversVersion": guest[1] if tools_known else None,  # type: ignore[index]
        "pvDriversUpToDate": guest[3] if tools_known and guest[4] else None,  # type: ignore[index]
    }


def host_metrics_fields(metrics: HostMetrics | None) -> dict[str, Any]:
    if metrics is None:
        return {"memory": {"usage": 0, "size": 0, "total": 0}, "power_state": "Unknown"}
    total, free, live = metrics
    total = -(-total // ONE_GIB) * ONE_GIB
    return {
        "memory": {"usage": total - free, "size": total},
        "power_state": "Running" if live else "Halted",
    }


# ---------------------------------------------------------------------------------------------
# The per-pool transform


class PoolObjects:
    """The XO objects of one pool, kept up to date from full loads and event batches."""

    def __init__(self) -> None:
        self.pool_id: str | None = None
        self.pool_ref: str | None = None
        self.objects: dict[str, XoObject] = {}
        self._ref_to_id: dict[str, str] = {}
        # Objects per class: their refs are found by a scan when needed (rarely), as a set of
        # refs per class would cost ~40 bytes per object.
        self._counts: dict[str, int] = dict.fromkeys(OBJECT_CLASSES, 0)
        self._metrics: dict[str, dict[str, tuple]] = {c: {} for c in METRICS_CLASSES}
        # metrics ref → parent ref, and parent ref → its inputs for re-patching
        self._metrics_parent: dict[str, str] = {}
        self._vm_inputs: dict[str, tuple[str, str, int]] = {}
        self._host_inputs: dict[str, str] = {}
        self._host_platform: dict[str, str | None] = {}

    # -- queries -------------------------------------------------------------------------------

    def id_of(self, ref: str) -> str | None:
        return self._ref_to_id.get(ref)

    def count(self, event_class: str) -> int:
        """Objects held for a lower-case class name (compared with valid_ref_counts)."""
        event_class = event_class.lower()
        if event_class in self._metrics:
            return len(self._metrics[event_class])
        return self._counts.get(event_class, 0)

    def refs(self, event_class: str) -> set[str]:
        event_class = event_class.lower()
        if event_class in self._metrics:
            return set(self._metrics[event_class])
        types = XO_TYPES.get(event_class, ())
        return {obj["_xapiRef"] for obj in self.objects.values() if obj["type"] in types}

    def host_addresses(self) -> list[str]:
        return [
            obj["address"]
            for obj in self.objects.values()
            if obj["type"] == "host" and obj["address"]
        ]

    # -- entry points --------------------------------------------------------------------------

    def load(
        self, records_by_class: Mapping[str, Mapping[str, Any]], *, consume: bool = False
    ) -> dict[str, XoObject]:
        """Full (re)sync: forget everything, transform every record; returns id → object.

        A record may still be raw JSON (`msgspec.Raw`, see records.RAW_RECORDS_TYPE): it is
        decoded when the transform reaches it. `consume` empties `records_by_class` (a dict) so
        that each class's records, if the caller keeps no other reference, are freed as soon as
        they are transformed: a cold sync then never holds every raw answer and every object."""
        self.__init__()  # type: ignore[misc]
        grouped = {cls.lower(): records.items() for cls, records in records_by_class.items()}
        if consume:
            records_by_class.clear()  # type: ignore[attr-defined]
        self._process(grouped)
        return dict(self.objects)

    def apply(self, events: Iterable[Mapping[str, Any]]) -> Changes:
        """One event.from reply's events → net changes (id → new object, or None for an exit)."""
        grouped: dict[str, list[tuple[str, dict | None]]] = {}
        for event in events:
            snapshot = None if event["operation"] == "del" else event.get("snapshot")
            if snapshot is None and event["operation"] != "del":
                continue
            grouped.setdefault(event["class"].lower(), []).append((event["ref"], snapshot))
        return self._process(grouped)

    def reload_class(self, cls: str, records: Mapping[str, Any]) -> Changes:
        """Replace every object of one class by a fresh `get_all_records` (count mismatch);
        records may be raw JSON, as in `load`."""
        event_class = cls.lower()
        gone = self.refs(event_class) - records.keys()
        items: list[tuple[str, Any]] = [(ref, None) for ref in gone]
        items.extend(records.items())
        return self._process({event_class: items})

    # -- the batch pipeline --------------------------------------------------------------------

    def _process(self, grouped: dict[str, Collection[tuple[str, Any]]]) -> Changes:
        changes: Changes = {}
        ref_to_id = self._ref_to_id

        for ref, record in grouped.get("pool", ()):
            if record is not None:
                self.pool_id = decode_id_fields("pool", record)["uuid"]
                self.pool_ref = ref

        # Ids first, so links to objects added in the same batch resolve.
        previous_ids: dict[str, str] = {}
        for cls in OBJECT_CLASSES:
            for ref, record in grouped.get(cls, ()):
                if record is None:
                    continue
                new_id = self._id_for(cls, ref, decode_id_fields(cls, record))
                old_id = ref_to_id.get(ref)
                if old_id is not None and old_id != new_id:
                    previous_ids[ref] = old_id
                ref_to_id[ref] = new_id

        touched_parents: set[str] = set()
        # Each class leaves `grouped` once processed: records nobody else holds are freed early.
        for cls in METRICS_CLASSES:
            items = grouped.pop(cls, None)
            if not items:
                continue
            fragments = self._metrics[cls]
            build = _FRAGMENT_BUILDERS[cls]
            for ref, record in items:
                if record is None:
                    fragments.pop(ref, None)
                else:
                    # Interned, as the parent's link to it: the ref is kept once, not twice.
                    fragments[_intern(ref)] = build(decode_record(cls, record))
                parent = self._metrics_parent.get(ref)
                if parent is not None:
                    touched_parents.add(parent)

        objects = self.objects
        for cls in OBJECT_CLASSES:
            items = grouped.pop(cls, None)
            if not items:
                continue
            transform = _TRANSFORMS[cls]
            count = self._counts[cls]
            for ref, record in items:
                touched_parents.discard(ref)
                if record is None:
                    object_id = ref_to_id.pop(ref, None)
                    self._forget_links(cls, ref)
                    if object_id is not None and objects.pop(object_id, None) is not None:
                        changes[object_id] = None
                        count -= 1
                    continue
                object_id = ref_to_id[ref]
                old_id = previous_ids.get(ref)
                if old_id is not None and objects.pop(old_id, None) is not None:
                    changes[old_id] = None
                    count -= 1
                obj = compact(transform(self, ref, decode_record(cls, record), object_id))
                if object_id not in objects:
                    count += 1
                objects[object_id] = obj
                changes[object_id] = obj
            self._counts[cls] = count

        for parent_ref in touched_parents:
            object_id = ref_to_id.get(parent_ref)
            old = objects.get(object_id) if object_id is not None else None
            if old is None:
                continue
            obj = self._repatch(parent_ref, old)
            objects[object_id] = obj  # type: ignore[index]
            changes[object_id] = obj  # type: ignore[index]
        return changes

    def _id_for(self, cls: str, ref: str, record: Mapping[str, Any]) -> str:
        uuid = record.get("uuid") or ref
        if (
            cls == "vm"
            and record.get("is_a_template")
            and not record.get("is_a_snapshot")
            and not record.get("is_control_domain")
            and is_default_template(record)
        ):
            return f"{self.pool_id}-{uuid}"
        return uuid

    def _forget_links(self, cls: str, ref: str) -> None:
        if cls == "vm":
            inputs = self._vm_inputs.pop(ref, None)
            if inputs is not None:
                for metrics_ref in inputs[:2]:
                    if self._metrics_parent.get(metrics_ref) == ref:
                        del self._metrics_parent[metrics_ref]
        elif cls == "host":
            self._host_platform.pop(ref, None)
            metrics_ref = self._host_inputs.pop(ref, None)
            if metrics_ref is not None and self._metrics_parent.get(metrics_ref) == ref:
                del self._metrics_parent[metrics_ref]

    def _repatch(self, parent_ref: str, old: XoObject) -> XoObject:
        if parent_ref in self._vm_inputs:
            metrics_ref, guest_ref, vcpus_at_startup = self._vm_inputs[parent_ref]
            fields = vm_metrics_fields(
                old,
                vcpus_at_startup,
                self._metrics["vm_metrics"].get(metrics_ref),  # type: ignore[arg-type]
                self._metrics["vm_guest_metrics"].get(guest_ref),
            )
        else:
            metrics_ref = self._host_inputs[parent_ref]
            fields = host_metrics_fields(self._metrics["host_metrics"].get(metrics_ref))  # type: ignore[arg-type]
        obj = dict(old)
        obj.update(fields)
        return obj

    # -- link helpers --------------------------------------------------------------------------

    def _link(self, ref: str | None) -> str | None:
        return self._ref_to_id.get(ref) if ref else None  # type: ignore[arg-type]

    def _links(self, refs: list[str] | None) -> list[str]:
        if not refs:
            return EMPTY_LIST
        get = self._ref_to_id.get
        # The copy is sized exactly; a comprehension's list has room for more (88 bytes, not 64,
        # for one id).
        return [i for i in map(get, refs) if i is not None][:]

    def _common(self, obj: XoObject, ref: str, object_id: str, record: Mapping[str, Any]) -> None:
        obj["id"] = object_id
        uuid = record.get("uuid", object_id)
        # The id is the uuid, already kept: don't keep a second copy of it.
        obj["uuid"] = object_id if uuid == object_id else uuid
        obj["$pool"] = self.pool_id
        obj["$poolId"] = self.pool_id
        obj["_xapiRef"] = ref

    # -- transforms (one per class) --------------------------------------------------------------

    def _pool(self, ref: str, r: dict, object_id: str) -> XoObject:
        cpu_info = _map(r.get("cpu_info"))
        other = _map(r.get("other_config"))
        master_id = self._link(r.get("master"))
        master = self.objects.get(master_id) if master_id else None
        restrictions = _map(r.get("restrictions"))
        ha_srs = []
        for vdi_id in self._links(r.get("ha_statefiles")):
            vdi = self.objects.get(vdi_id)
            if vdi is not None:
                ha_srs.append(vdi["$SR"])
        obj: XoObject = {
            "type": "pool",
            "auto_poweron": other.get("auto_poweron") == "true",
            "crashDumpSr": self._link(r.get("crash_dump_SR")),
            "current_operations": _map(r.get("current_operations")),
            "default_SR": self._link(r.get("default_SR")),
            "HA_enabled": bool(r.get("ha_enabled")),
            "haSrs": ha_srs or EMPTY_LIST,
            "master": master_id,
            "tags": _list(r.get("tags")),
            "name_description": r.get("name_description", ""),
            "name_label": r.get("name_label") or (master["name_label"] if master else ""),
            "otherConfig": other,
            "cpus": {
                "cores": to_number(cpu_info.get("cpu_count")),
                "sockets": to_number(cpu_info.get("socket_count")),
            },
            "platform_version": self._host_platform.get(r.get("master", "")),
            "suspendSr": self._link(r.get("suspend_image_SR")),
            "zstdSupported": restrictions.get("restrict_zstd_export") == "false",
            "vtpmSupported": restrictions.get("restrict_vtpm") == "false",
        }
        self._common(obj, ref, object_id, r)
        obj["$pool"] = obj["$poolId"] = object_id
        return obj

    def _host(self, ref: str, r: dict, object_id: str) -> XoObject:
        cpu_info = _map(r.get("cpu_info"))
        other = _map(r.get("other_config"))
        software = _map(r.get("software_version"))
        license_params = _map(r.get("license_params"))
        metrics_ref = _intern(r.get("metrics", NULL_REF))
        self._host_inputs[ref] = metrics_ref
        if metrics_ref != NULL_REF:
            self._metrics_parent[metrics_ref] = ref
        self._host_platform[ref] = software.get("platform_version")
        boot_time = to_timestamp(other.get("boot_time"))
        if software.get("product_brand") == "XCP-ng":
            patch_time = to_number(other.get("rpm_patch_installation_time"))
            reboot_required = bool(boot_time is not None and patch_time and boot_time < patch_time)
        else:
            reboot_required = bool(r.get("updates_requiring_reboot"))
        pifs = self._links(r.get("PIFs"))
        pcis = self._links(r.get("PCIs"))
        pgpus = self._links(r.get("PGPUs"))
        obj: XoObject = {
            "type": "host",
            "CPUs": cpu_info,
            "address": r.get("address", ""),
            "bios_strings": _map(r.get("bios_strings")),
            "build": software.get("build_number"),
            "enabled": bool(r.get("enabled")),
            "controlDomain": self._link(r.get("control_domain")),
            "cpus": {
                "cores": to_number(cpu_info.get("cpu_count")),
                "sockets": to_number(cpu_info.get("socket_count")),
            },
            "current_operations": _map(r.get("current_operations")),
            "hostname": r.get("hostname", ""),
            "iscsiIqn": r.get("iscsi_iqn") or other.get("iscsi_iqn", ""),
            "zstdSupported": license_params.get("restrict_zstd_export") == "false",
            "license_params": license_params,
            "license_server": _map(r.get("license_server")),
            "license_expiry": to_timestamp(license_params.get("expiry")),
            "logging": _map(r.get("logging")),
            "name_description": r.get("name_description", ""),
            "name_label": r.get("name_label", ""),
            "multipathing": other.get("multipathing") == "true",
            "otherConfig": other,
            "patches": self._links(r.get("patches")),
            "powerOnMode": r.get("power_on_mode", ""),
            "residentVms": self._links(r.get("resident_VMs")),
            "startTime": boot_time,
            "agentStartTime": to_timestamp(other.get("agent_start_time")),
            "rebootRequired": reboot_required,
            "tags": _list(r.get("tags")),
            "version": software.get("product_version"),
            "productBrand": software.get("product_brand"),
            "hvmCapable": any(c.startswith("hvm") for c in r.get("capabilities", ())),
            "PIFs": pifs,
            "$PIFs": pifs,
            "PCIs": pcis,
            "$PCIs": pcis,
            "PGPUs": pgpus,
            "$PGPUs": pgpus,
            "$PBDs": self._links(r.get("PBDs")),
        }
        obj.update(host_metrics_fields(self._metrics["host_metrics"].get(metrics_ref)))  # type: ignore[arg-type]
        self._common(obj, ref, object_id, r)
        return obj

    def _vm(self, ref: str, r: dict, object_id: str) -> XoObject:
        other = _map(r.get("other_config"))
        platform = _map(r.get("platform"))
        power_state = _intern(r.get("power_state", "Halted"))
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
            resource_set = _json_or_none(resource_set)
        task_ops = r.get("current_operations")
        if task_ops:
            get = self._ref_to_id.get
            current_operations = {get(t): op for t, op in task_ops.items() if get(t) is not None}
        else:
            current_operations = EMPTY_MAP
        uuid = r.get("uuid", "")
        creation = _json_or_none(other.get(f"xo:{uuid[:8]}")) if uuid else None
        creation = creation.get("creation") if isinstance(creation, dict) else None

        resident_on = r.get("resident_on", NULL_REF)
        vbds = self._links(r.get("VBDs"))
        if resident_on != NULL_REF:
            container = self._link(resident_on)
        else:
            container = self._halted_container(vbds)

        # Interned, as the metrics fragments' keys: each ref is kept once.
        metrics_ref = _intern(r.get("metrics", NULL_REF))
        guest_ref = _intern(r.get("guest_metrics", NULL_REF))
        vcpus_at_startup = to_int(r.get("VCPUs_at_startup", 0))
        self._vm_inputs[ref] = (metrics_ref, guest_ref, vcpus_at_startup)
        if metrics_ref != NULL_REF:
            self._metrics_parent[metrics_ref] = ref
        if guest_ref != NULL_REF:
            self._metrics_parent[guest_ref] = ref
        vgpus = self._links(r.get("VGPUs"))

        obj: XoObject = {
            "type": vm_type,
            "affinityHost": self._link(r.get("affinity")),
            "auto_poweron": other.get("auto_poweron") == "true",
            "bios_strings": shared_map(r.get("bios_strings")),
            "blockedOperations": shared_map(r.get("blocked_operations")),
            "boot": shared_map(r.get("HVM_boot_params")),
            "CPUs": {"max": to_int(r.get("VCPUs_max", 0)), "number": vcpus_at_startup},
            "creation": creation,
            "current_operations": current_operations,
            "expNestedHvm": platform.get("exp-nested-hvm") == "true",
            "viridian": platform.get("viridian") == "true",
            "high_availability": r.get("ha_restart_priority", ""),
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
            "notes": other.get("xo:notes"),
            "other": other,
            "parent": self._link(r.get("parent")),
            "power_state": power_state,
            "hasVendorDevice": bool(r.get("has_vendor_device")),
            "resourceSet": resource_set if isinstance(resource_set, str) else None,
            "snapshots": self._links(r.get("snapshots")),
            "startDelay": to_int(r.get("start_delay", 0)),
            "secureBoot": platform.get("secureboot") == "true",
            "suspendSr": self._link(r.get("suspend_SR")),
            "tags": shared_list(r.get("tags")),
            "VIFs": self._links(r.get("VIFs")),
            "VTPMs": self._links(r.get("VTPMs")),
            "virtualizationMode": domain_type,
            "$container": container,
            "$VBDs": vbds,
            "VGPUs": vgpus,
            "$VGPUs": vgpus,
            "nicType": platform.get("nic_type"),
            "xenStoreData": shared_map(r.get("xenstore_data")),
        }
        obj.update(
            vm_metrics_fields(
                obj,
                vcpus_at_startup,
                self._metrics["vm_metrics"].get(metrics_ref),  # type: ignore[arg-type]
                self._metrics["vm_guest_metrics"].get(guest_ref),
            )
        )
        if is_hvm:
            obj["vga"] = platform.get("vga", "cirrus")
            obj["videoram"] = platform.get("videoram", 4)
        cores_per_socket = platform.get("cores-per-socket")
        if cores_per_socket is not None:
            obj["coresPerSocket"] = to_number(cores_per_socket)

        if vm_type == "VM-snapshot":
            obj["snapshot_time"] = to_timestamp(r.get("snapshot_time"))
            obj["$snapshot_of"] = self._link(r.get("snapshot_of"))
            obj["suspendVdi"] = self._link(r.get("suspend_VDI"))
        elif vm_type == "VM-template":
            disks = other.get("disks")
            methods = other.get("install-methods")
            obj["isDefaultTemplate"] = is_default_template(r)
            obj["template_info"] = {
                "arch": other.get("install-arch"),
                "disks": _template_disks(disks) if disks else EMPTY_LIST,
                "install_methods": methods.split(",") if methods else EMPTY_LIST,
                "install_repository": other.get("install-repository"),
            }

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
        self._common(obj, ref, object_id, r)
        return obj

    def _halted_container(self, vbd_ids: list[str]) -> str | None:
        """A halted VM lives in its pool, unless one of its VDIs is on a local SR: then its host."""
        objects = self.objects
        for vbd_id in vbd_ids:
            vbd = objects.get(vbd_id)
            vdi = objects.get(vbd["VDI"]) if vbd is not None and vbd["VDI"] else None
            sr = objects.get(vdi["$SR"]) if vdi is not None and vdi["$SR"] else None
            if sr is not None and not sr["shared"] and sr["$PBDs"]:
                pbd = objects.get(sr["$PBDs"][0])
                if pbd is not None and pbd["host"] is not None:
                    return pbd["host"]
        return self.pool_id

    def _sr(self, ref: str, r: dict, object_id: str) -> XoObject:
        sr_type = _intern(r.get("type", ""))
        shared = bool(r.get("shared"))
        pbds = self._links(r.get("PBDs"))
        container = self.pool_id
        if not shared and pbds:
            pbd = self.objects.get(pbds[0])
            container = pbd["host"] if pbd is not None else self.pool_id
        other = _map(r.get("other_config"))
        obj: XoObject = {
            "type": "SR",
            "content_type": _intern(r.get("content_type", "")),
            "physical_usage": to_int(r.get("physical_utilisation", 0)),
            "allocationStrategy": ALLOCATION_BY_TYPE.get(sr_type),
            "current_operations": _map(r.get("current_operations")),
            "inMaintenanceMode": "xo:maintenanceState" in other,
            "name_description": r.get("name_description", ""),
            "name_label": r.get("name_label", ""),
            "size": to_int(r.get("physical_size", 0)),
            "shared": shared,
            "SR_type": sr_type,
            "tags": _list(r.get("tags")),
            "usage": to_int(r.get("virtual_allocation", 0)),
            "VDIs": self._links(r.get("VDIs")),
            "other_config": other,
            "sm_config": _map(r.get("sm_config")),
            "$container": container,
            "$PBDs": pbds,
        }
        self._common(obj, ref, object_id, r)
        return obj

    def _pbd(self, ref: str, r: dict, object_id: str) -> XoObject:
        obj: XoObject = {
            "type": "PBD",
            "attached": bool(r.get("currently_attached")),
            "host": self._link(r.get("host")),
            "SR": self._link(r.get("SR")),
            "device_config": _obfuscate(_map(r.get("device_config"))),
            "otherConfig": _map(r.get("other_config")),
        }
        self._common(obj, ref, object_id, r)
        return obj

    def _pif(self, ref: str, r: dict, object_id: str) -> XoObject:
        obj: XoObject = {
            "type": "PIF",
            "attached": bool(r.get("currently_attached")),
            "isBondMaster": bool(r.get("bond_master_of")),
            "isBondSlave": r.get("bond_slave_of", NULL_REF) != NULL_REF,
            "device": _intern(r.get("device", "")),
            "deviceName": None,
            "dns": r.get("DNS", ""),
            "disallowUnplug": bool(r.get("disallow_unplug")),
            "gateway": r.get("gateway", ""),
            "ip": r.get("IP", ""),
            "ipv6": _list(r.get("IPv6")),
            "mac": r.get("MAC", ""),
            "management": bool(r.get("management")),
            "carrier": False,
            "mode": _intern(r.get("ip_configuration_mode", "None")),
            "ipv6Mode": _intern(r.get("ipv6_configuration_mode", "None")),
            "mtu": to_int(r.get("MTU", 1500)),
            "netmask": r.get("netmask", ""),
            "physical": bool(r.get("physical")),
            "primaryAddressType": _intern(r.get("primary_address_type", "IPv4")),
            "vlan": to_int(r.get("VLAN", -1)),
            "speed": None,
            "$host": self._link(r.get("host")),
            "$network": self._link(r.get("network")),
        }
        self._common(obj, ref, object_id, r)
        return obj

    def _vdi(self, ref: str, r: dict, object_id: str) -> XoObject:
        sm_config = _map(r.get("sm_config"))
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
            "parent": sm_config.get("vhd-parent"),
            "size": to_int(r.get("virtual_size", 0)),
            "snapshots": self._links(r.get("snapshots")),
            "tags": _list(r.get("tags")),
            "usage": to_int(r.get("physical_utilisation", 0)),
            "VDI_type": _intern(r.get("type", "user")),
            "cbt_enabled": bool(r.get("cbt_enabled")),
            "current_operations": _map(r.get("current_operations")),
            "other_config": _map(r.get("other_config")),
            "$SR": self._link(r.get("SR")),
            "$VBDs": self._links(r.get("VBDs")),
        }
        if vdi_type == "VDI-snapshot":
            obj["snapshot_time"] = to_timestamp(r.get("snapshot_time"))
            obj["$snapshot_of"] = self._link(r.get("snapshot_of"))
        self._common(obj, ref, object_id, r)
        return obj

    def _vbd(self, ref: str, r: dict, object_id: str) -> XoObject:
        obj: XoObject = {
            "type": "VBD",
            "attached": bool(r.get("currently_attached")),
            "bootable": bool(r.get("bootable")),
            "device": _intern(r["device"]) if r.get("device") else None,
            "is_cd_drive": r.get("type") == "CD",
            "position": _intern(str(r.get("userdevice", ""))),
            "read_only": r.get("mode") == "RO",
            "VDI": self._link(r.get("VDI")),
            "VM": self._link(r.get("VM")),
        }
        self._common(obj, ref, object_id, r)
        return obj

    def _vif(self, ref: str, r: dict, object_id: str) -> XoObject:
        other = _map(r.get("other_config"))
        tx = other.get("ethtool-tx")
        rate_limit = None
        if r.get("qos_algorithm_type") == "ratelimit":
            rate_limit = to_number(_map(r.get("qos_algorithm_params")).get("kbps"))
        obj: XoObject = {
            "type": "VIF",
            "allowedIpv4Addresses": _list(r.get("ipv4_allowed")),
            "allowedIpv6Addresses": _list(r.get("ipv6_allowed")),
            "attached": bool(r.get("currently_attached")),
            "device": _intern(str(r.get("device", ""))),
            "lockingMode": _intern(r.get("locking_mode", "network_default")),
            "MAC": r.get("MAC", ""),
            "MTU": to_int(r.get("MTU", 1500)),
            "other_config": other,
            "txChecksumming": not (tx == "false" or tx == "off"),
            "rateLimit": rate_limit,
            "$network": self._link(r.get("network")),
            "$VM": self._link(r.get("VM")),
        }
        self._common(obj, ref, object_id, r)
        return obj

    def _network(self, ref: str, r: dict, object_id: str) -> XoObject:
        other = _map(r.get("other_config"))
        purpose = r.get("purpose") or ()
        obj: XoObject = {
            "type": "network",
            "automatic": other.get("automatic") == "true",
            "bridge": r.get("bridge", ""),
            "current_operations": _map(r.get("current_operations")),
            "defaultIsLocked": r.get("default_locking_mode") == "disabled",
            "MTU": to_int(r.get("MTU", 1500)),
            "name_description": r.get("name_description", ""),
            "name_label": r.get("name_label", ""),
            "other_config": other,
            "tags": _list(r.get("tags")),
            "PIFs": self._links(r.get("PIFs")),
            "VIFs": self._links(r.get("VIFs")),
            "nbd": "nbd" in purpose,
            "insecureNbd": "insecure_nbd" in purpose,
        }
        self._common(obj, ref, object_id, r)
        return obj

    def _message(self, ref: str, r: dict, object_id: str) -> XoObject:
        obj: XoObject = {
            "type": "message",
            "body": r.get("body", ""),
            "name": r.get("name", ""),
            "time": to_timestamp(r.get("timestamp")),
            "$object": r.get("obj_uuid"),
        }
        self._common(obj, ref, object_id, r)
        return obj

    def _task(self, ref: str, r: dict, object_id: str) -> XoObject:
        other = _map(r.get("other_config"))
        applies_to = other.get("applies_to")
        progress = r.get("progress", 0)
        progress = to_number(progress) if progress is not None else None
        obj: XoObject = {
            "type": "task",
            "allowedOperations": _list(r.get("allowed_operations")),
            "created": to_timestamp(r.get("created")),
            "current_operations": _map(r.get("current_operations")),
            "finished": to_timestamp(r.get("finished")),
            "name_description": r.get("name_description", ""),
            "name_label": r.get("name_label", ""),
            "progress": progress,
            "result": r.get("result", ""),
            "status": _intern(r.get("status", "pending")),
            "xapiRef": ref,
            "applies_to": self._link(applies_to) if applies_to else None,
            "$host": self._link(r.get("resident_on")),
        }
        self._common(obj, ref, object_id, r)
        return obj


_TRANSFORMS = {
    "pool": PoolObjects._pool,
    "host": PoolObjects._host,
    "vm": PoolObjects._vm,
    "sr": PoolObjects._sr,
    "pbd": PoolObjects._pbd,
    "pif": PoolObjects._pif,
    "vdi": PoolObjects._vdi,
    "vbd": PoolObjects._vbd,
    "vif": PoolObjects._vif,
    "network": PoolObjects._network,
    "message": PoolObjects._message,
    "task": PoolObjects._task,
}
_FRAGMENT_BUILDERS = {
    "vm_metrics": vm_metrics_fragment,
    "vm_guest_metrics": guest_metrics_fragment,
    "host_metrics": host_metrics_fragment,
}


def transform_pool(records_by_class: Mapping[str, Mapping[str, dict]]) -> dict[str, XoObject]:
    """The XO objects of one pool's full record set (what a fresh sync must produce)."""
    return PoolObjects().load(records_by_class)
