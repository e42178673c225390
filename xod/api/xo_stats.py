"""RRD series in the shape of Xen Orchestra's `vm.stats` / `host.stats` / `sr.stats` (pure).

xo-server's `xapi-stats.mjs` reads `/rrd_updates` and maps each data source of the object to a
path of its result (`cpus.0`, `vifs.rx.0`, `iops.r.a`…) with a unit change (fractions → %,
KiB → bytes, µs → ms, MiB/s → bytes/s); unknown sources are left out, NaN becomes null. The
tables below are those mappings; `sr_stats` merges the host stats of an SR's hosts as XO does.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xod.api import errors

# granularity → (seconds per point, points): what XO asks `/rrd_updates` for.
GRANULARITIES: dict[str, tuple[int, int]] = {
    "seconds": (5, 120),
    "minutes": (60, 120),
    "hours": (3600, 168),
    "days": (86400, 366),
}

Path = tuple[str, ...]
Values = list[float | None]


def faulty_granularity(message: str) -> errors.ApiError:
    """XO's FaultyGranularity: a plain error (-32000), its message as XO words it."""
    return errors.unknown_error(message)


def step_of(granularity: str | None) -> tuple[int, int]:
    try:
        return GRANULARITIES[granularity or "seconds"]
    except KeyError:
        raise faulty_granularity(
            f"Unknown granularity: '{granularity}'. Use 'seconds', 'minutes', 'hours', or 'days'."
        ) from None


@dataclass(frozen=True, slots=True)
class Rule:
    """A data source name pattern, the result path it fills (`{1}`: a group) and the factor."""

    pattern: re.Pattern[str]
    path: tuple[str, ...]
    factor: float = 1.0

    def apply(self, name: str) -> tuple[Path, float] | None:
        match = self.pattern.fullmatch(name)
        if match is None:
            return None
        groups = match.groups()
        return tuple(part.format(*groups) for part in self.path), self.factor


def _rule(pattern: str, *path: str, factor: float = 1.0) -> Rule:
    return Rule(re.compile(pattern), path, factor)


_RW = {"read": "r", "write": "w", "total": "total"}
_RUNSTATES = {
    "fullrun": "runstateFullrun",
    "full_contention": "runstateFullContention",
    "partial_run": "runstatePartialRun",
    "partial_contention": "runstatePartialContention",
    "concurrency_hazard": "runstateConcurrencyHazard",
    "blocked": "runstateBlocked",
}

VM_RULES: tuple[Rule, ...] = (
    _rule(r"memory_internal_free", "memoryFree", factor=1024),
    _rule(r"memory_target", "memoryTarget"),
    _rule(r"memory", "memory"),
    _rule(r"cpu(\d+)", "cpus", "{0}", factor=100),
    _rule(r"cpu_usage", "cpuUsage", factor=100),
    *(_rule(rf"runstate_{name}", key, factor=100) for name, key in _RUNSTATES.items()),
    _rule(r"vif_(\d+)_rx", "vifs", "rx", "{0}"),
    _rule(r"vif_(\d+)_tx", "vifs", "tx", "{0}"),
    _rule(r"vif_(\d+)_rx_errors", "vifErrors", "rx", "{0}"),
    _rule(r"vif_(\d+)_tx_errors", "vifErrors", "tx", "{0}"),
    _rule(r"vbd_xvd(\w)_read", "xvds", "r", "{0}"),
    _rule(r"vbd_xvd(\w)_write", "xvds", "w", "{0}"),
    *(_rule(rf"vbd_xvd(\w)_iops_{op}", "iops", key, "{0}") for op, key in _RW.items()),
    _rule(r"vbd_xvd(\w)_read_latency", "vbdLatency", "r", "{0}", factor=1e-3),
    _rule(r"vbd_xvd(\w)_write_latency", "vbdLatency", "w", "{0}", factor=1e-3),
    *(
        _rule(rf"vbd_xvd(\w)_io_throughput_{op}", "ioThroughput", key, "{0}", factor=2**20)
        for op, key in _RW.items()
    ),
    _rule(r"vbd_xvd(\w)_latency", "vbdAvgLatency", "{0}", factor=1e-3),
    _rule(r"vbd_xvd(\w)_iowait", "vbdIowait", "{0}", factor=100),
    _rule(r"vbd_xvd(\w)_inflight", "vbdInflight", "{0}"),
    _rule(r"vbd_xvd(\w)_avgqu_sz", "vbdAvgquSz", "{0}"),
)

HOST_RULES: tuple[Rule, ...] = (
    _rule(r"loadavg", "load"),
    _rule(r"memory_free_kib", "memoryFree", factor=1024),
    _rule(r"memory_total_kib", "memory", factor=1024),
    _rule(r"cpu(\d+)", "cpus", "{0}", factor=100),
    _rule(r"pif_eth(\d+)_rx", "pifs", "rx", "{0}"),
    _rule(r"pif_eth(\d+)_tx", "pifs", "tx", "{0}"),
    *(_rule(rf"iops_{op}_(\w{{8}})", "iops", key, "{0}") for op, key in _RW.items()),
    *(
        _rule(rf"io_throughput_{op}_(\w{{8}})", "ioThroughput", key, "{0}", factor=2**20)
        for op, key in _RW.items()
    ),
    _rule(r"read_latency_(\w{8})", "latency", "r", "{0}", factor=1e-3),
    _rule(r"write_latency_(\w{8})", "latency", "w", "{0}", factor=1e-3),
    _rule(r"latency_(\w{8})", "latency", "total", "{0}", factor=1e-3),
    _rule(r"iowait_(\w{8})", "iowait", "{0}"),
    _rule(r"hostload", "hostload"),
    _rule(r"memory_reclaimed", "memoryReclaimed", factor=1024),
    _rule(r"memory_reclaimed_max", "memoryReclaimedMax", factor=1024),
    _rule(r"running_vcpus", "runningVcpus"),
    _rule(r"pif_aggr_rx", "pifsAggr", "rx"),
    _rule(r"pif_aggr_tx", "pifsAggr", "tx"),
)


def values_of(series: array[float], factor: float) -> Values:
    """A column with its unit changed, oldest first; NaN → null."""
    if factor == 1.0:
        return [None if math.isnan(v) else v for v in series]
    return [None if math.isnan(v) else v * factor for v in series]


def _put(stats: dict[str, Any], path: Path, values: Values) -> None:
    node = stats
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = values


def map_sources(sources: Mapping[str, array[float]], rules: Iterable[Rule]) -> dict[str, Any]:
    """An object's data sources → XO's stats tree (sources no rule knows are left out)."""
    rules = tuple(rules)
    stats: dict[str, Any] = {}
    for name, series in sources.items():
        for rule in rules:
            found = rule.apply(name)
            if found is not None:
                path, factor = found
                _put(stats, path, values_of(series, factor))
                break
    return stats


def result(end: int, interval: int, stats: dict[str, Any]) -> dict[str, Any]:
    return {"endTimestamp": end, "interval": interval, "stats": stats}


# -- sr.stats ------------------------------------------------------------------------------------


def _combine(columns: list[Values], merge: Callable[[list[float]], float]) -> Values:
    """Point by point over the shortest column; null where no host has a value."""
    combined: Values = []
    for points in zip(*columns, strict=False):
        present = [p for p in points if p is not None]
        combined.append(merge(present) if present else None)
    return combined


def sr_stats(sr_uuid: str, hosts: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The stats of the hosts attached to an SR (name_label, host.stats result), merged as XO
    does: IOPS and throughput summed, latency averaged, iowait per host."""
    if not hosts:
        return result(0, 0, {})
    key = sr_uuid[:8]
    stats: dict[str, Any] = {}
    for field, merge in (
        ("iops", sum),
        ("ioThroughput", sum),
        ("latency", lambda points: sum(points) / len(points)),
    ):
        for op in ("r", "w"):
            columns = [
                host["stats"][field][op][key]
                for _name, host in hosts
                if key in host["stats"].get(field, {}).get(op, {})
            ]
            if columns:
                stats.setdefault(field, {})[op] = _combine(columns, merge)
    iowait = {
        name: host["stats"]["iowait"][key]
        for name, host in hosts
        if key in host["stats"].get("iowait", {})
    }
    if iowait:
        stats["iowait"] = iowait
    end = max(host["endTimestamp"] for _name, host in hosts)
    return result(end, hosts[0][1]["interval"], stats)
