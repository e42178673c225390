"""Cold sync of a large pool into the cache, the simulator running in a separate process.

    PYTHONPATH=. .venv/bin/python bench/cache_sync.py [--vms 1000 10000]

Prints one JSON object: per pool size, wall time and xod CPU time (time.process_time in the xod
process) of connect + inject + parallel get_all_records + transform + store, peak and steady RSS,
and bytes per cached VM measured two ways: RSS delta of the whole cache (every class, indexes,
ref maps) divided by the user VM count, and the deep size of the VM objects alone.
Each size runs in a fresh child process so peaks do not mix.
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
from typing import Any

import orjson

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_SECONDS_10K = 2.5
TARGET_BYTES_PER_VM = 6 * 1024


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


def child(vms: int) -> None:
    process, info = start_simulator(vms)
    try:
        result = asyncio.run(measure(info))
    finally:
        process.terminate()
        process.wait(10)
    result["requested_vms"] = vms
    print(orjson.dumps(result).decode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    runs = []
    for vms in args.vms:
        output = subprocess.run(
            [sys.executable, __file__, "--child", str(vms)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": ROOT},
            capture_output=True,
            check=True,
        ).stdout
        runs.append(orjson.loads(output.splitlines()[-1]))
    summary: dict[str, Any] = {"benchmark": "cache_sync", "runs": runs}
    big = next((r for r in runs if r["requested_vms"] >= 10000), None)
    if big is not None:
        summary["targets"] = {
            "cold_sync_10k_xod_cpu_s": {"target": TARGET_SECONDS_10K, "got": big["xod_cpu_s"]},
            "bytes_per_vm_object": {"target": TARGET_BYTES_PER_VM, "got": big["vm_object_bytes"]},
            "cache_rss_bytes_per_vm": {
                "target": TARGET_BYTES_PER_VM,
                "got": big["cache_rss_bytes_per_vm"],
            },
        }
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
