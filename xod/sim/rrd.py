"""The simulator's round-robin databases: what xcp-rrdd would record, computed from the workload.

No history is stored: every value is a function of the object, the data source and the time
(smooth waves and a little noise, seeded by the object's uuid), scaled by what the pool holds
right now. A host's figures follow its resident VMs (load, running vCPUs, free memory); a running
VM has CPU, memory, network and disk figures; a halted VM has none (it has no RRD on any host).

`rrd_updates` answers xcp-rrdd's `/rrd_updates` (archives, row selection, legend, `%0.15g`
strings, newest row first) for one host; `host.get_data_sources` lists the host's sources.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xod.sim.values import NULL_REF

if TYPE_CHECKING:
    from xod.sim.dispatch import Call
    from xod.sim.pool import SimPool
    from xod.sim.registry import Registry

# xcp-rrdd's archives (rrdd_shared.ml timescales): (seconds per row, rows kept).
ARCHIVES: tuple[tuple[int, int], ...] = ((5, 120), (60, 120), (3600, 168), (86400, 366))
KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Source:
    """One data source of one RRD: the legend's `<kind>:<uuid>:<name>` and how it moves."""

    kind: str  # "host" | "vm"
    uuid: str
    name: str
    base: float  # the level it moves around
    swing: float  # relative amplitude of its wave (0: constant)
    units: str = ""

    def value(self, at: float) -> float:
        if self.swing == 0:
            return self.base
        seed = zlib.crc32(f"{self.uuid}:{self.name}".encode())
        phase = (seed % 6283) / 1000
        period = 600 + seed % 3000
        wave = math.sin(at * 2 * math.pi / period + phase)
        noise = math.sin(at * 0.37 + seed) * 0.25
        return max(0.0, self.base * (1 + self.swing * (0.8 * wave + 0.2 * noise)))


def _ratio(value: float) -> float:
    """A CPU fraction kept in 0..1."""
    return min(1.0, max(0.0, value))


def vm_sources(pool: SimPool, vm_ref: str) -> list[Source]:
    """A running VM's sources; none for a VM that does not run (no RRD)."""
    db = pool.db
    vm = db.get("VM", vm_ref)
    if vm["power_state"] != "Running":
        return []
    uuid = vm["uuid"]
    metrics = db.tables["VM_metrics"].get(vm["metrics"], {})
    vcpus = int(metrics.get("VCPUs_number") or vm["VCPUs_at_startup"])
    memory = float(metrics.get("memory_actual") or vm["memory_dynamic_max"])
    busy = 0.05 + (zlib.crc32(uuid.encode()) % 40) / 100
    sources = [Source("vm", uuid, f"cpu{n}", busy, 0.6, "(fraction)") for n in range(vcpus)]
    sources += [
        Source("vm", uuid, "cpu_usage", busy, 0.5, "(fraction)"),
        Source("vm", uuid, "memory", memory, 0.0, "B"),
        Source("vm", uuid, "memory_target", memory, 0.0, "B"),
        Source("vm", uuid, "memory_internal_free", memory / KIB * (0.5 - busy / 2), 0.3, "KiB"),
        Source("vm", uuid, "runstate_fullrun", busy, 0.5, "(fraction)"),
    ]
    for vif_ref in vm["VIFs"]:
        device = db.get("VIF", vif_ref)["device"]
        sources += [
            Source("vm", uuid, f"vif_{device}_rx", 200 * KIB, 0.9, "B/s"),
            Source("vm", uuid, f"vif_{device}_tx", 80 * KIB, 0.9, "B/s"),
        ]
    for vbd_ref in vm["VBDs"]:
        vbd = db.get("VBD", vbd_ref)
        if vbd["type"] != "Disk" or not str(vbd["userdevice"]).isdigit():
            continue
        disk = f"xvd{chr(ord('a') + int(vbd['userdevice']))}"
        sources += [
            Source("vm", uuid, f"vbd_{disk}_read", 2 * MIB, 0.9, "B/s"),
            Source("vm", uuid, f"vbd_{disk}_write", 1 * MIB, 0.9, "B/s"),
            Source("vm", uuid, f"vbd_{disk}_iops_read", 120, 0.9, "requests/s"),
            Source("vm", uuid, f"vbd_{disk}_iops_write", 60, 0.9, "requests/s"),
            Source("vm", uuid, f"vbd_{disk}_read_latency", 400, 0.5, "μs"),
            Source("vm", uuid, f"vbd_{disk}_write_latency", 900, 0.5, "μs"),
        ]
    return sources


def resident_vms(pool: SimPool, host_ref: str) -> Iterator[str]:
    for ref, vm in pool.db.tables["VM"].items():
        if vm["resident_on"] == host_ref and not vm["is_control_domain"]:
            yield ref


def host_sources(pool: SimPool, host_ref: str) -> list[Source]:
    db = pool.db
    host = db.get("host", host_ref)
    uuid = host["uuid"]
    cpus = int(host["cpu_info"].get("cpu_count") or 1)
    running = [db.get("VM", ref) for ref in resident_vms(pool, host_ref)]
    vcpus = sum(int(vm["VCPUs_at_startup"]) for vm in running if vm["power_state"] == "Running")
    load = _ratio(0.02 + 0.3 * vcpus / cpus)
    metrics = db.tables["host_metrics"].get(host["metrics"], {})
    total = float(metrics.get("memory_total") or 0)
    used = sum(float(vm["memory_dynamic_max"]) for vm in running)
    free = max(0.0, total - used - 4 * 1024 * MIB)
    sources = [Source("host", uuid, f"cpu{n}", load, 0.5, "(fraction)") for n in range(cpus)]
    sources += [
        Source("host", uuid, "cpu_avg", load, 0.4, "(fraction)"),
        Source("host", uuid, "loadavg", vcpus * 0.3, 0.4, ""),
        Source("host", uuid, "memory_total_kib", total / KIB, 0.0, "KiB"),
        Source("host", uuid, "memory_free_kib", free / KIB, 0.05, "KiB"),
        Source("host", uuid, "running_vcpus", float(vcpus), 0.0, ""),
        Source("host", uuid, "pif_aggr_rx", (1 + len(running)) * 300 * KIB, 0.8, "B/s"),
        Source("host", uuid, "pif_aggr_tx", (1 + len(running)) * 120 * KIB, 0.8, "B/s"),
    ]
    for pif_ref in host["PIFs"]:
        device = db.get("PIF", pif_ref)["device"]
        sources += [
            Source("host", uuid, f"pif_{device}_rx", (1 + len(running)) * 300 * KIB, 0.8, "B/s"),
            Source("host", uuid, f"pif_{device}_tx", (1 + len(running)) * 120 * KIB, 0.8, "B/s"),
        ]
    for pbd_ref in host["PBDs"]:
        pbd = db.get("PBD", pbd_ref)
        if not pbd["currently_attached"] or pbd["SR"] == NULL_REF:
            continue
        sr8 = db.get("SR", pbd["SR"])["uuid"][:8]
        activity = 1 + len(running)
        sources += [
            Source("host", uuid, f"iops_read_{sr8}", 50.0 * activity, 0.9, "requests/s"),
            Source("host", uuid, f"iops_write_{sr8}", 30.0 * activity, 0.9, "requests/s"),
            Source("host", uuid, f"iops_total_{sr8}", 80.0 * activity, 0.9, "requests/s"),
            Source("host", uuid, f"io_throughput_read_{sr8}", 1.5 * activity, 0.9, "MiB/s"),
            Source("host", uuid, f"io_throughput_write_{sr8}", 0.8 * activity, 0.9, "MiB/s"),
            Source("host", uuid, f"io_throughput_total_{sr8}", 2.3 * activity, 0.9, "MiB/s"),
            Source("host", uuid, f"read_latency_{sr8}", 500.0, 0.5, "μs"),
            Source("host", uuid, f"write_latency_{sr8}", 1200.0, 0.5, "μs"),
            Source("host", uuid, f"latency_{sr8}", 800.0, 0.5, "μs"),
            Source("host", uuid, f"iowait_{sr8}", 0.02 * activity, 0.5, ""),
        ]
    return sources


def format_value(value: float) -> str:
    """rrdd's number format: `%0.15g`, zero as `0.0`, NaN and infinities by name."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return "0.0" if value == 0 else f"{value:0.15g}"


def select_rows(start: int, interval: int, now: float) -> tuple[int, list[int]]:
    """The archive (its step) and the row times to send, newest first. An archive serves a
    `start` up to one row older than its oldest row: a client's window computed from a clock
    read a moment earlier (XO's `now − step × points + step`) keeps its granularity."""
    chosen = ARCHIVES[-1]
    for step, rows in ARCHIVES:
        if step >= interval and step * (int(now) // step) - step * rows <= start:
            chosen = (step, rows)
            break
    step, rows = chosen
    end = step * (int(now) // step)
    oldest = end - step * (rows - 1)
    first = max(oldest, -(-start // step) * step)
    return step, list(range(end, first - 1, -step))


def rrd_updates(
    pool: SimPool,
    host_ref: str,
    *,
    start: int,
    interval: int,
    include_host: bool,
    vm_uuids: list[str] | None,
    now: float | None = None,
) -> dict[str, Any]:
    """The `/rrd_updates` answer (the JSON form, every number a string) of one host."""
    now = time.time() if now is None else now
    if start < 0:
        start = int(now) + start
    sources = host_sources(pool, host_ref) if include_host else []
    for vm_ref in resident_vms(pool, host_ref):
        if vm_uuids is None or pool.db.get("VM", vm_ref)["uuid"] in vm_uuids:
            sources += vm_sources(pool, vm_ref)
    step, times = select_rows(start, interval, now)
    return {
        "meta": {
            "start": str(times[-1] if times else start),
            "step": str(step),
            "end": str(times[0] if times else start),
            "rows": str(len(times)),
            "columns": str(len(sources)),
            "legend": [f"AVERAGE:{s.kind}:{s.uuid}:{s.name}" for s in sources],
        },
        "data": [
            {"t": str(t), "values": [format_value(s.value(t)) for s in sources]} for t in times
        ],
    }


def rrd_updates_xml(answer: dict[str, Any]) -> str:
    """The same answer in rrdd's XML form (`json` absent)."""
    meta = answer["meta"]
    legend = "".join(f"<entry>{entry}</entry>" for entry in meta["legend"])
    rows = "".join(
        "<row><t>" + row["t"] + "</t>" + "".join(f"<v>{v}</v>" for v in row["values"]) + "</row>"
        for row in answer["data"]
    )
    return (
        f"<xport><meta><start>{meta['start']}</start><step>{meta['step']}</step>"
        f"<end>{meta['end']}</end><rows>{meta['rows']}</rows>"
        f"<columns>{meta['columns']}</columns><legend>{legend}</legend></meta>"
        f"<data>{rows}</data></xport>"
    )


# -- host.get_data_sources -----------------------------------------------------------------------


def host_get_data_sources(call: Call, host: str) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {
            "name_label": source.name,
            "name_description": source.name,
            "enabled": True,
            "standard": True,
            "min": 0.0,
            # xapi shows `inf` for an unbounded source, which neither wire format carries here.
            "max": 1.0 if source.units == "(fraction)" else 0.0,
            "units": source.units,
            "value": source.value(now),
        }
        for source in host_sources(call.pool, host)
    ]


def register(registry: Registry) -> None:
    registry.add("host.get_data_sources", [("host", "ref:host")], host_get_data_sources)
