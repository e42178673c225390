"""Sustained ingest: VM record modifications applied to the cache as fast as the simulator
(a separate process) produces them.

    PYTHONPATH=. .venv/bin/python bench/cache_ingest.py [--vms 2000] [--seconds 10] [--mix rename]

The producer process runs the simulator and, in a tight loop, modifies VM records round-robin,
yielding to its event loop between bursts so event.from replies go out. `--mix rename` (default)
renames VMs: every event is a full VM snapshot and every one changes a cached VM (the heaviest
kind of event). `--mix rename+metrics` alternates renames with VM_metrics.memory_actual
updates (small events; most of them change nothing visible, the VM's memory coming from its
guest metrics). The xod process runs one PoolSync and counts the events it applies and the
changes the store emits. Printed as JSON: events and changes per second of wall time and per
xod CPU second (the one-core capacity), CPU shares of xod and of the producer, batch sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import time
from typing import Any

import orjson

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_CHANGES_PER_CPU_S = 10_000


async def produce(vms: int, burst: int, mix: str) -> None:
    from xod.sim.pool import SimConfig
    from xod.sim.simulator import Simulator

    async with Simulator(SimConfig(hosts=3, vms=vms, seed=1)) as sim:
        info = {"master_url": sim.master_url}
        print(orjson.dumps(info).decode(), flush=True)
        db = sim.pool.db
        user_vms = [
            ref
            for ref, r in db.tables["VM"].items()
            if not r["is_a_template"] and not r["is_control_domain"] and not r["is_a_snapshot"]
        ]
        counter = 0
        while True:
            for _ in range(burst):
                vm = user_vms[counter % len(user_vms)]
                counter += 1
                if mix == "rename" or counter % 2:
                    db.update("VM", vm, {"name_label": f"vm-{counter}"})
                else:
                    metrics = db.tables["VM"][vm]["metrics"]
                    db.update("VM_metrics", metrics, {"memory_actual": (counter % 8 + 1) << 30})
            await asyncio.sleep(0)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def consume(
    master_url: str, seconds: float, gen0: int | None, producer_pid: int
) -> dict[str, Any]:
    from xod import runtime
    from xod.cache.store import ChangeBatch, ObjectStore
    from xod.cache.sync import PoolSync
    from xod.xapi.connection import PoolConnection

    if gen0:
        # Fewer young-generation passes (xod/runtime.py's tune_process sets the daemon's).
        gc.set_threshold(gen0, *gc.get_threshold()[1:])
    store = ObjectStore()
    connection = PoolConnection(master_url, "root", "password", call_timeout=120)
    # The load as in the daemon: the cache frozen out of the GC's view once loaded.
    sync = PoolSync(connection, store, event_timeout=5.0, bulk_load=runtime.bulk_load)
    counted = {"changes": 0, "batches": 0, "max_batch": 0, "events": 0}
    apply_reply = sync.apply_reply

    async def counting_apply_reply(reply: Any) -> None:
        counted["events"] += len(reply.get("events") or ())
        await apply_reply(reply)

    sync.apply_reply = counting_apply_reply  # type: ignore[method-assign]

    def count(batch: ChangeBatch) -> None:
        counted["changes"] += len(batch)
        counted["batches"] += 1
        counted["max_batch"] = max(counted["max_batch"], len(batch))

    sync.start()
    async with asyncio.timeout(120):
        await sync.wait_synced()
    await asyncio.sleep(1.0)  # reach steady state
    store.subscribe(count)
    counted["events"] = 0
    wall = time.perf_counter()
    cpu = time.process_time()
    producer_cpu = process_cpu_seconds(producer_pid)
    await asyncio.sleep(seconds)
    producer_cpu = process_cpu_seconds(producer_pid) - producer_cpu
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    await sync.stop()
    await connection.close()
    changes, events = counted["changes"], counted["events"]
    return {
        "seconds": round(wall, 2),
        "events": events,
        "changes": changes,
        "events_per_wall_s": round(events / wall),
        "changes_per_wall_s": round(changes / wall),
        "xod_cpu_s": round(cpu, 3),
        "xod_cpu_share": round(cpu / wall, 2),
        "producer_cpu_share": round(producer_cpu / wall, 2),
        "events_per_xod_cpu_s": round(events / cpu) if cpu else None,
        "changes_per_xod_cpu_s": round(changes / cpu) if cpu else None,
        "batches": counted["batches"],
        "mean_batch": round(changes / max(counted["batches"], 1), 1),
        "max_batch": counted["max_batch"],
        "full_syncs": sync.full_syncs,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--gen0", type=int, default=None, help="gc generation-0 threshold")
    parser.add_argument("--mix", choices=("rename", "rename+metrics"), default="rename")
    parser.add_argument("--producer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.producer:
        asyncio.run(produce(args.vms, args.burst, args.mix))
        return
    producer = subprocess.Popen(
        [sys.executable, __file__, "--producer", "--vms", str(args.vms), "--burst",
         str(args.burst), "--mix", args.mix],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        info = orjson.loads(producer.stdout.readline())  # type: ignore[union-attr]
        result = asyncio.run(consume(info["master_url"], args.seconds, args.gen0, producer.pid))
    finally:
        producer.terminate()
        producer.wait(10)
    result = {
        "benchmark": "cache_ingest",
        "vms": args.vms,
        "mix": args.mix,
        "gc_gen0": args.gen0,
        **result,
    }
    result["target"] = {
        "changes_per_xod_cpu_s": TARGET_CHANGES_PER_CPU_S,
        "met": (result["changes_per_xod_cpu_s"] or 0) >= TARGET_CHANGES_PER_CPU_S,
    }
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
