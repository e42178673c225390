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
    EMPTY_LIST,
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
# Certificate → (fingerprint, not_after): a host's TLS certificates, shown on the host.
Certificate = tuple[str, int | None]

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
        # As xo-server's template string renders it: a missing part reads "undefined".
        micro, build = pv.get("micro", "undefined"), pv.get("build", "undefined")
        version = intern(f"{major}.{minor}.{micro}-{build}")
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


def certificate_fragment(record: Mapping[str, Any]) -> Certificate:
    return (record.get("fingerprint", ""), to_timestamp(record.get("not_after")))


_FRAGMENT_BUILDERS: dict[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]] = {
    "vm_metrics": vm_metrics_fragment,
    "vm_guest_metrics": guest_metrics_fragment,
    "host_metrics": host_metrics_fragment,
    "certificate": certificate_fragment,
}


def vm_metrics_fields(
    vm: Mapping[str, Any],
    vcpus_at_startup: int,
    metrics: VmMetrics | None,
    guest: GuestMetrics | None,
    windows: bool | None = None,
) -> dict[str, Any]:
    """The VM fields that depend on VM_metrics / VM_guest_metrics, from the VM's own fields
    (`windows`: whether a VM is a Windows guest; None for templates, snapshots and dom0, which
    carry no `vulnerabilities`)."""
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

    fields: dict[str, Any] = {
        "addresses": guest[6] if guest is not None else EMPTY_MAP,
        "CPUs": shared_map({"max": vm["CPUs"]["max"], "number": cpus_number}),
        "memory": shared_map(memory),
        "os_version": guest[0] if guest is not None else None,
    }
    # What follows is left out when unknown, as xo-server does (`undefined`: no key).
    if guest is not None and guest[7] is not None:
        fields["mainIpAddress"] = guest[7]
    if metrics is not None:
        fields["installTime"] = metrics[3]
        fields["startTime"] = metrics[2]
    if xen_tools is not None:
        fields["xenTools"] = xen_tools
    if running and metrics is not None and guest is not None:
        # xo-server's getVmGuestToolsProps: only for a running VM with both metrics records.
        detected = guest[4]
        fields["managementAgentDetected"] = guest[2] is not None or guest[5]
        fields["pvDriversDetected"] = detected
        if guest[1] is not None:
            fields["pvDriversVersion"] = guest[1]
        if detected:
            fields["pvDriversUpToDate"] = guest[3]
    if windows is not None:
        fields["vulnerabilities"] = _vulnerabilities(windows, running, guest)
    return fields


# Keys vm_metrics_fields may leave out: a re-patch removes them before adding the new fields.
OPTIONAL_VM_METRICS_KEYS = (
    "mainIpAddress",
    "installTime",
    "startTime",
    "xenTools",
    "managementAgentDetected",
    "pvDriversDetected",
    "pvDriversVersion",
    "pvDriversUpToDate",
)
_NOT_VULNERABLE: dict[str, Any] = {"xsa468": False}
_NO_PV_DRIVERS: dict[str, Any] = {"xsa468": {"reason": "no-pv-drivers-detected"}}


def _vulnerabilities(windows: bool, running: bool, guest: GuestMetrics | None) -> dict[str, Any]:
    """XSA-468 concerns the PV drivers of Windows guests: a running Windows VM whose drivers
    are not detected gets XO's `no-pv-drivers-detected`. Driver versions are not assessed (xod
    has no table of the vulnerable builds): other VMs read `false`."""
    if windows and running and (guest is None or not guest[4]):
        return _NO_PV_DRIVERS
    return _NOT_VULNERABLE


def host_metrics_fields(
    metrics: HostMetrics | None, certificates: Iterable[Certificate] = ()
) -> dict[str, Any]:
    shown = [{"fingerprint": f, "notAfter": not_after} for f, not_after in certificates]
    if metrics is None:
        return {
            "memory": {"usage": 0, "size": 0, "total": 0},
            "power_state": "Unknown",
            "certificates": shown or EMPTY_LIST,
        }
    total, free, live = metrics
    total = -(-total // ONE_GIB) * ONE_GIB
    return {
        "memory": {"usage": total - free, "size": total},
        "power_state": "Running" if live else "Halted",
        "certificates": shown or EMPTY_LIST,
    }


class MetricsLinks:
    """One pool's metrics fragments and which VM or host each metrics record belongs to."""

    def __init__(self) -> None:
        self.fragments: dict[str, dict[str, tuple[Any, ...]]] = {c: {} for c in METRICS_CLASSES}
        # metrics ref → parent ref, and parent ref → its inputs for re-patching
        self._parent: dict[str, str] = {}
        self._vm_inputs: dict[str, tuple[str, str, int, bool | None]] = {}
        # host ref → (its host_metrics ref, its Certificate refs)
        self._host_inputs: dict[str, tuple[str, tuple[str, ...]]] = {}

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

    def watch_vm(
        self,
        ref: str,
        metrics_ref: str,
        guest_ref: str,
        vcpus_at_startup: int,
        windows: bool | None = None,
    ) -> None:
        """Remember a VM's metrics records (refs interned by the caller: each is kept once)."""
        self._vm_inputs[ref] = (metrics_ref, guest_ref, vcpus_at_startup, windows)
        if metrics_ref != NULL_REF:
            self._parent[metrics_ref] = ref
        if guest_ref != NULL_REF:
            self._parent[guest_ref] = ref

    def watch_host(self, ref: str, metrics_ref: str, certificates: tuple[str, ...] = ()) -> None:
        self._host_inputs[ref] = (metrics_ref, certificates)
        for child in (metrics_ref, *certificates):
            if child != NULL_REF:
                self._parent[child] = ref

    def vm_fields(self, ref: str, vm: Mapping[str, Any]) -> dict[str, Any]:
        """The metrics fields of a watched VM, given its other fields."""
        metrics_ref, guest_ref, vcpus_at_startup, windows = self._vm_inputs[ref]
        return vm_metrics_fields(
            vm,
            vcpus_at_startup,
            self.fragments["vm_metrics"].get(metrics_ref),
            self.fragments["vm_guest_metrics"].get(guest_ref),
            windows,
        )

    def host_fields(self, ref: str) -> dict[str, Any]:
        """The metrics fields of a watched host."""
        metrics_ref, certificate_refs = self._host_inputs[ref]
        known = self.fragments["certificate"]
        return host_metrics_fields(
            self.fragments["host_metrics"].get(metrics_ref),
            [known[c] for c in certificate_refs if c in known],
        )

    def repatch(self, parent_ref: str, old: XoObject) -> XoObject:
        """A new version of a VM or host whose metrics changed."""
        obj = dict(old)
        if parent_ref in self._vm_inputs:
            fields = self.vm_fields(parent_ref, old)
            for key in OPTIONAL_VM_METRICS_KEYS:
                obj.pop(key, None)
        else:
            fields = self.host_fields(parent_ref)
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
            host_inputs = self._host_inputs.pop(ref, None)
            if host_inputs is not None:
                for child in (host_inputs[0], *host_inputs[1]):
                    if self._parent.get(child) == ref:
                        del self._parent[child]
