"""Metrics records folded into their parent's XO object.

XAPI keeps a VM's live figures in VM_metrics / VM_guest_metrics records and a host's in
host_metrics; XO shows a few of those fields on the VM or host itself. Each metrics record is
reduced once to a small tuple (its "fragment"), so that a metrics change only re-patches its
parent, and `MetricsLinks` remembers, per pool, which parent each metrics record belongs to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from sys import intern
from typing import Any

from xod.cache.objects.classes import METRICS_CLASSES
from xod.cache.objects.sharing import shared_map
from xod.cache.objects.values import (
    EMPTY_MAP,
    ONE_GIB,
    XoObject,
    as_map,
    to_int,
    to_number,
    to_timestamp,
)
from xod.cache.records import decode_record
from xod.xapi.codec import NULL_REF

# VM_metrics → (VCPUs_number, memory_actual, start_time, install_time)
VmMetrics = tuple[int, int, int | None, int | None]
# VM_guest_metrics → (os_version, PV version "a.b.c-d" | None, (major, minor) | None,
#                     up_to_date, detected, static-ip feature, addresses, main ip, used, total)
GuestMetrics = tuple[Any, ...]
# host_metrics → (memory_total, memory_free, live)
HostMetrics = tuple[int, int, bool]

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
        result[intern(f"{device}/{family}/{index or 0}")] = address
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


def vm_metrics_fragment(record: Mapping[str, Any]) -> VmMetrics:
    return (
        to_int(record.get("VCPUs_number", 0)),
        to_int(record.get("memory_actual", 0)),
        to_timestamp(record.get("start_time")),
        to_timestamp(record.get("install_time")),
    )


def guest_metrics_fragment(record: Mapping[str, Any]) -> GuestMetrics:
    pv = as_map(record.get("PV_drivers_version"))
    major, minor = pv.get("major"), pv.get("minor")
    has_version = major is not None and minor is not None
    version = None
    if major is not None and minor is not None:  # has_version, spelled out for mypy
        major, minor = intern(major), intern(minor)
        version = intern(f"{major}.{minor}.{pv.get('micro')}-{pv.get('build')}")
    detected = record.get("PV_drivers_detected")
    if detected is None:
        detected = has_version
    addresses = normalize_networks(as_map(record.get("networks")))
    memory = as_map(record.get("memory"))
    return (
        shared_map(record.get("os_version")),
        version,
        (major, minor) if has_version else None,
        bool(record.get("PV_drivers_up_to_date")),
        bool(detected),
        as_map(record.get("other")).get("feature-static-ip-setting") == "1",
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


_FRAGMENT_BUILDERS: dict[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]] = {
    "vm_metrics": vm_metrics_fragment,
    "vm_guest_metrics": guest_metrics_fragment,
    "host_metrics": host_metrics_fragment,
}


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
        cpus_number = metrics[0]

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

    tools = guest if running and metrics is not None else None  # known while it runs
    return {
        "addresses": guest[6] if guest is not None else EMPTY_MAP,
        "mainIpAddress": guest[7] if guest is not None else None,
        "CPUs": shared_map({"max": vm["CPUs"]["max"], "number": cpus_number}),
        "memory": shared_map(memory),
        "installTime": metrics[3] if metrics is not None else None,
        "startTime": metrics[2] if metrics is not None else None,
        "os_version": guest[0] if guest is not None else None,
        "xenTools": xen_tools,
        "managementAgentDetected": bool(tools is not None and (tools[2] is not None or tools[5])),
        "pvDriversDetected": bool(tools is not None and tools[4]),
        "pvDriversVersion": tools[1] if tools is not None else None,
        "pvDriversUpToDate": tools[3] if tools is not None and tools[4] else None,
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


class MetricsLinks:
    """One pool's metrics fragments and which VM or host each metrics record belongs to."""

    def __init__(self) -> None:
        self.fragments: dict[str, dict[str, tuple[Any, ...]]] = {c: {} for c in METRICS_CLASSES}
        # metrics ref → parent ref, and parent ref → its inputs for re-patching
        self._parent: dict[str, str] = {}
        self._vm_inputs: dict[str, tuple[str, str, int]] = {}
        self._host_inputs: dict[str, str] = {}

    def clear(self) -> None:
        for fragments in self.fragments.values():
            fragments.clear()
        self._parent.clear()
        self._vm_inputs.clear()
        self._host_inputs.clear()

    def update(self, cls: str, items: Iterable[tuple[str, Any]], touched_parents: set[str]) -> None:
        """Fold one metrics class's records (None = deleted) in; their parents' refs are added
        to `touched_parents` (they need re-patching)."""
        fragments = self.fragments[cls]
        build = _FRAGMENT_BUILDERS[cls]
        parents = self._parent
        for ref, record in items:
            if record is None:
                fragments.pop(ref, None)
            else:
                # Interned, as the parent's link to it: the ref is kept once, not twice.
                fragments[intern(ref)] = build(decode_record(cls, record))
            parent = parents.get(ref)
            if parent is not None:
                touched_parents.add(parent)

    def watch_vm(self, ref: str, metrics_ref: str, guest_ref: str, vcpus_at_startup: int) -> None:
        """Remember a VM's metrics records (refs interned by the caller: each is kept once)."""
        self._vm_inputs[ref] = (metrics_ref, guest_ref, vcpus_at_startup)
        if metrics_ref != NULL_REF:
            self._parent[metrics_ref] = ref
        if guest_ref != NULL_REF:
            self._parent[guest_ref] = ref

    def watch_host(self, ref: str, metrics_ref: str) -> None:
        self._host_inputs[ref] = metrics_ref
        if metrics_ref != NULL_REF:
            self._parent[metrics_ref] = ref

    def vm_fields(self, ref: str, vm: Mapping[str, Any]) -> dict[str, Any]:
        """The metrics fields of a watched VM, given its other fields."""
        metrics_ref, guest_ref, vcpus_at_startup = self._vm_inputs[ref]
        return vm_metrics_fields(
            vm,
            vcpus_at_startup,
            self.fragments["vm_metrics"].get(metrics_ref),
            self.fragments["vm_guest_metrics"].get(guest_ref),
        )

    def host_fields(self, ref: str) -> dict[str, Any]:
        """The metrics fields of a watched host."""
        metrics_ref = self._host_inputs[ref]
        return host_metrics_fields(self.fragments["host_metrics"].get(metrics_ref))

    def repatch(self, parent_ref: str, old: XoObject) -> XoObject:
        """A new version of a VM or host whose metrics changed."""
        if parent_ref in self._vm_inputs:
            fields = self.vm_fields(parent_ref, old)
        else:
            fields = self.host_fields(parent_ref)
        obj = dict(old)
        obj.update(fields)
        return obj

    def forget(self, cls: str, ref: str) -> None:
        """A VM or host left: its metrics records no longer patch anything."""
        if cls == "vm":
            inputs = self._vm_inputs.pop(ref, None)
            if inputs is not None:
                for metrics_ref in inputs[:2]:
                    if self._parent.get(metrics_ref) == ref:
                        del self._parent[metrics_ref]
        elif cls == "host":
            host_metrics_ref = self._host_inputs.pop(ref, None)
            if host_metrics_ref is not None and self._parent.get(host_metrics_ref) == ref:
                del self._parent[host_metrics_ref]
