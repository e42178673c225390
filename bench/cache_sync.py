"""Cold sync of a large pool into the cache, the simulator running in a separate process.

    PYTHONPATH=. .venv/bin/python bench/cache_sync.py [--vms 1000 10000]
    PYTHONPATH=. .venv/bin/python bench/cache_sync.py --vms 10000 --load-compare [--repeat 3]

Prints one JSON line per pool size, then a summary line: wall time and xod CPU time
(time.process_time in the xod process) of connect + inject + parallel get_all_records +
transform + store, and RSS figures, each labelled: the whole process's (interpreter and
libraries included, ~38 MiB before the sync) and the cache's own (RSS minus the RSS before the
sync). Bytes per cached VM are measured three ways: the cache's own steady RSS (every class,
indexes, ref maps, and the allocator's free-but-kept memory) ÷ user VMs; live Python bytes of
the whole cache (tracemalloc, in a second run, since tracing slows everything) ÷ user VMs; and
the deep size of the VM objects alone. The process is tuned as the daemon tunes it
(xod/runtime.py). Each run is a fresh child process so peaks do not mix.

`--load-compare` measures whether steady RSS depends on the machine's load: the daemon's
setting (the server, with the daemon's runtime tuning, and one WebSocket client in another
process that receives every object's notification) syncs the pool once on the machine as it is
and once with two CPU-bound neighbour processes; it reports both steady RSS figures and their
ratio (target ≤ 1.1).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_SECONDS_10K = 2.5
TARGET_BYTES_PER_VM = 6 * 1024
# Peak RSS during the sync ≤ 1.5 × steady state, both counted as the cache's own memory.
TARGET_PEAK_OVER_STEADY = 1.5
# Steady RSS after a sync with two busy neighbours ≤ 1.1 × the figure without them.
TARGET_LOADED_OVER_QUIET = 1.1
# Time given, after the last notification was read, for whatever is freed late to be freed.
SETTLE_SECONDS = 2.0
ADMIN_EMAIL = "admin@admin.net"
ADMIN_PASSWORD = "bench-password"


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
    from xod import runtime
    from xod.cache.store import ObjectStore
    from xod.cache.sync import PoolSync
    from xod.xapi.connection import PoolConnection

    runtime.tune_process()
    store = ObjectStore()
    connection = PoolConnection(
        info["master_url"], info["username"], info["password"], call_timeout=600
    )
    sync = PoolSync(connection, store, bulk_load=runtime.bulk_load)
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
    from xod import runtime
    from xod.cache.store import ObjectStore
    from xod.cache.sync import PoolSync
    from xod.xapi.connection import PoolConnection

    runtime.tune_process()
    gc.collect()
    rss_before = rss_bytes()
    store = ObjectStore()
    connection = PoolConnection(
        info["master_url"], info["username"], info["password"], call_timeout=300
    )
    sync = PoolSync(connection, store, bulk_load=runtime.bulk_load)
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
        "process_rss_before_mib": round(rss_before / 2**20, 1),
        "process_peak_rss_mib": round(peak / 2**20, 1),
        "process_steady_rss_mib": round(steady / 2**20, 1),
        "process_peak_over_steady": round(peak / steady, 2),
        "cache_peak_rss_mib": round((peak - rss_before) / 2**20, 1),
        "cache_steady_rss_mib": round((steady - rss_before) / 2**20, 1),
        "cache_peak_over_steady": round((peak - rss_before) / (steady - rss_before), 2),
        "cache_rss_bytes_per_vm": round((steady - rss_before) / max(len(vms), 1)),
        "vm_object_bytes": round(vm_object_bytes),
    }


async def start_xod(state_dir: Path) -> Any:
    """xod's server in this process, tuned as the daemon tunes it (xod/runtime.py), on a fresh
    state directory and a free port: started (imported only here: the RSS measured before
    counts no xod module)."""
    from xod import runtime
    from xod.server.app import ServerConfig, XodApp

    runtime.tune_process()
    config = ServerConfig(
        state_dir=state_dir,
        port=0,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        bulk_load=runtime.bulk_load,
    )
    app = XodApp(config)
    app.first_start(print_to=None)
    await app.start()
    return app


async def measure_daemon_setting(info: dict) -> dict[str, Any]:
    """Steady RSS after a cold sync in the daemon's setting: the server tuned as the daemon
    tunes it, with one WebSocket client in another process receiving every notification."""
    from xod import runtime

    with tempfile.TemporaryDirectory(prefix="xod-bench-") as state_dir:
        app = await start_xod(Path(state_dir))
        reader = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client", f"ws://127.0.0.1:{app.port}/api/",
            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with asyncio.timeout(30):  # the client signed in
                await reader.stdout.readline()  # type: ignore[union-attr]
            gc.collect()
            rss_before = rss_bytes()
            wall = time.perf_counter()
            sync = app.pools.add("bench", info["master_url"], info["username"], info["password"])
            async with asyncio.timeout(300):  # the cold sync
                await sync.wait_synced()
            wall = time.perf_counter() - wall
            # Every notification sent and read: what is kept now is what stays.
            async with asyncio.timeout(120):
                while app.fanout.peers and any(p.held_bytes for p in app.fanout.peers):  # noqa: ASYNC110 (nothing signals it)
                    await asyncio.sleep(0.1)
            await asyncio.sleep(SETTLE_SECONDS)
            gc.collect()
            steady = rss_bytes()
            # What the allocator kept free (given back only by an explicit trim).
            runtime.release_memory()
            trimmed = rss_bytes()
        finally:
            reader.terminate()
            await reader.wait()
            await app.stop()
    return {
        "wall_s": round(wall, 3),
        "process_rss_before_mib": round(rss_before / 2**20, 1),
        "process_steady_rss_mib": round(steady / 2**20, 1),
        "cache_steady_rss_mib": round((steady - rss_before) / 2**20, 1),
        "allocator_kept_free_mib": round((steady - trimmed) / 2**20, 1),
    }


async def notification_reader(url: str) -> None:
    """A client that signs in (so it receives every object's notification) and reads forever."""
    import websockets

    async with websockets.connect(url, max_size=None) as ws:
        request = {"id": 1, "jsonrpc": "2.0", "method": "session.signIn",
                   "params": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}}  # fmt: skip
        await ws.send(orjson.dumps(request).decode())
        while orjson.loads(await ws.recv()).get("id") != 1:
            pass
        print("signed in", flush=True)
        async for _frame in ws:
            pass


def busy_neighbours(count: int) -> list[subprocess.Popen]:
    """CPU-bound processes competing with xod and the simulator for the cores."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


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
    parser.add_argument(
        "--load-compare",
        action="store_true",
        help="steady RSS in the daemon's setting, with and without two CPU-bound neighbours",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds of --load-compare")
    parser.add_argument("--daemon-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(notification_reader(args.client))
        return
    if args.daemon_child:
        process, info = start_simulator(args.daemon_child)
        try:
            result = asyncio.run(measure_daemon_setting(info))
        finally:
            process.terminate()
            process.wait(10)
        print(orjson.dumps(result).decode())
        return
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

    if args.load_compare:
        load_compare(args.vms[-1], args.repeat, run_child)
        return
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
            # The target is a wall time; the CPU time is a figure beside it.
            "cold_sync_10k_wall_s": {"target": TARGET_SECONDS_10K, "got": big["wall_s"]},
            "cold_sync_10k_xod_cpu_s": {"target": None, "got": big["xod_cpu_s"]},
            # The target is about the cache's own memory; the whole process's ratio (the
            # interpreter's memory in both terms) is shown beside it.
            "cache_peak_over_steady": {
                "target": TARGET_PEAK_OVER_STEADY,
                "got": big["cache_peak_over_steady"],
            },
            "process_peak_over_steady": {"target": None, "got": big["process_peak_over_steady"]},
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


def load_compare(vms: int, rounds: int, run_child: Any) -> None:
    quiet: list[dict[str, Any]] = []
    loaded: list[dict[str, Any]] = []
    for _ in range(rounds):
        quiet.append(run_child("--daemon-child", str(vms)))
        neighbours = busy_neighbours(2)
        try:
            loaded.append(run_child("--daemon-child", str(vms)))
        finally:
            for neighbour in neighbours:
                neighbour.kill()
                neighbour.wait()
    quiet_mib = statistics.median(r["process_steady_rss_mib"] for r in quiet)
    loaded_mib = statistics.median(r["process_steady_rss_mib"] for r in loaded)
    worst_mib = max(r["process_steady_rss_mib"] for r in loaded)
    summary = {
        "benchmark": "cache_sync_load",
        "vms": vms,
        "quiet_runs": quiet,
        "loaded_runs": loaded,
        "quiet_steady_rss_mib": quiet_mib,
        "loaded_steady_rss_mib": loaded_mib,
        "targets": {
            "loaded_over_quiet_steady_rss": {
                "target": TARGET_LOADED_OVER_QUIET,
                "got": round(loaded_mib / quiet_mib, 3),
                "worst": round(worst_mib / quiet_mib, 3),
            }
        },
    }
    print(orjson.dumps(summary).decode())


if __name__ == "__main__":
    main()
