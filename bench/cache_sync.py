"""Cold sync of a large pool into the cache, the simulator running in a separate process.

    PYTHONPATH=. .venv/bin/python bench/cache_sync.py [--vms 1000 10000]

Prints one JSON line per pool size, then a summary line: wall time and xod CPU time
(time.process_time in the xod process) of connect + inject + parallel get_all_records +
transform + store, peak and steady RSS, and bytes per cached VM measured three ways: RSS
growth of the whole cache (every class, indexes, ref maps, and the allocator's free-but-kept
memory) ÷ user VMs; live Python bytes of the whole cache (tracemalloc, in a second run, since
tracing slows everything) ÷ user VMs; and the deep size of the VM objects alone.
Each run is a fresh child process so peaks do not mix.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import orjson

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_SECONDS_10K = 2.5
TARGET_BYTES_PER_VM = 6 * 1024
TARGET_PEAK_OVER_STEADY = 1.5  # perf.md S1: peak RSS during the sync ≤ 1.5 × steady state


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def deep_size(objects: list[Any]) -> int:
    """Bytes of the given objects and everything they reference, shared parts counted once."""
    seen: set[int] = set()
    total = 0
    stack = list(objects)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple):
            stack.extend(obj)
    return total


def start_simulator(vms: int) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [sys.executable, "-m", "xod.sim", "--json", "--hosts", "3", "--vms", str(vms),
         "--seed", "1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        stdout=subprocess.PIPE,
    )  # fmt: skip
    line = process.stdout.readline()  # type: ignore[union-attr]
    if not line:
        process.kill()
        raise RuntimeError("simulator did not start")
    return process, orjson.loads(line)


async def measure_traced(info: dict) -> dict[str, Any]:
    """Live Python bytes the cache holds after a cold sync (tracemalloc; timings meaningless)."""
    from xod.cache.store import ObjectStore
    from xod.cache.sync import PoolSync
    from xod.xapi.connection import PoolConnection

    store = ObjectStore()
    connection = PoolConnection(
        info["master_url"], info["username"], info["password"], call_timeout=600
    )
    sync = PoolSync(connection, store)
    await connection.connect()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await sync.full_sync()
    gc.collect()
    live, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    vms = len(store.by_type("VM"))
    await connection.close()
    return {
        "cache_traced_mib": round((live - before) / 2**20, 1),
        "traced_peak_mib": round((peak - before) / 2**20, 1),
        "cache_traced_bytes_per_vm": round((live - before) / max(vms, 1)),
    }


async def measure(info: dict) -> dict[str, Any]:
    from xod.cache.store import ObjectStore
    from xod.cache.sync import PoolSync
    from xod.xapi.connection import PoolConnection

    gc.collect()
    rss_before = rss_bytes()
    store = ObjectStore()
    connection = PoolConnection(
        info["master_url"], info["username"], info["password"], call_timeout=300
    )
    sync = PoolSync(connection, store)
    wall = time.perf_counter()
    cpu = time.process_time()
    await connection.connect()
    await sync.full_sync()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    peak = peak_rss_bytes()
    gc.collect()
    steady = rss_bytes()
    vms = [o for o in store.by_type("VM").values()]
    vm_object_bytes = deep_size(vms) / max(len(vms), 1)
    await connection.close()
    return {
        "objects": len(store),
        "vms": len(vms),
        "types": {t: len(store.by_type(t)) for t in sorted(store.types())},
        "wall_s": round(wall, 3),
        "xod_cpu_s": round(cpu, 3),
        "rss_before_mib": round(rss_before / 2**20, 1),
        "peak_rss_mib": round(peak / 2**20, 1),
        "steady_rss_mib": round(steady / 2**20, 1),
        "peak_over_steady": round(peak / steady, 2),
        "cache_rss_bytes_per_vm": round((steady - rss_before) / max(len(vms), 1)),
        "vm_object_bytes": round(vm_object_bytes),
    }


def child(vms: int, traced: bool) -> None:
    process, info = start_simulator(vms)
    try:
        result = asyncio.run(measure_traced(info) if traced else measure(info))
    finally:
        process.terminate()
        process.wait(10)
    result["requested_vms"] = vms
    print(orjson.dumps(result).decode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc run")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.traced)
        return

    def run_child(*options: str) -> dict[str, Any]:
        output = subprocess.run(
            [sys.executable, __file__, *options],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": ROOT},
            capture_output=True,
            check=True,
        ).stdout
        return orjson.loads(output.splitlines()[-1])

    runs = []
    for vms in args.vms:
        run = run_child("--child", str(vms))
        if not args.no_trace:
            run.update(run_child("--child", str(vms), "--traced"))
        runs.append(run)
    summary: dict[str, Any] = {"benchmark": "cache_sync", "runs": runs}
    big = next((r for r in runs if r["requested_vms"] >= 10000), None)
    if big is not None:
        summary["targets"] = {
            "cold_sync_10k_xod_cpu_s": {"target": TARGET_SECONDS_10K, "got": big["xod_cpu_s"]},
            "peak_over_steady": {"target": TARGET_PEAK_OVER_STEADY, "got": big["peak_over_steady"]},
            "bytes_per_vm_object": {"target": TARGET_BYTES_PER_VM, "got": big["vm_object_bytes"]},
            "cache_rss_bytes_per_vm": {
                "target": TARGET_BYTES_PER_VM,
                "got": big["cache_rss_bytes_per_vm"],
            },
            "cache_traced_bytes_per_vm": {
                "target": TARGET_BYTES_PER_VM,
                "got": big.get("cache_traced_bytes_per_vm"),
            },
        }
    # One JSON line per run, then the summary line.
    for run in runs:
        print(orjson.dumps({"benchmark": "cache_sync", **run}).decode())
    print(orjson.dumps(summary).decode())


if __name__ == "__main__":
    main()
