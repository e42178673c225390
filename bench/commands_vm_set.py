"""Sequential `vm.set` through xod against the same calls made straight to the simulator with
the official `XenAPI` client, on a 1k-VM pool with xapi's 50 ms event batching.

Measures, per call: the time through xod (it answers once XAPI has; the connection keeps a
write barrier), the same with `_waitForCache: true` (the answer waits for the cache), xod's own
time (everything but the XAPI call, timed inside xod's connection), and stale reads: right after
each write, an `xo.getAllObjects` on the connection that wrote and on another one.

    PYTHONPATH=. .venv/bin/python bench/commands_vm_set.py [--calls 200] [--reads 50] [--vms 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import XenAPI

from bench.commands_sim import simulator_process
from tests.api.harness import Client, connect, running_xod
from xod.server.app import XodApp
from xod.xapi.connection import PoolConnection


def direct_calls(url: str, calls: int) -> list[float]:
    session = XenAPI.Session(url)
    session.xenapi.login_with_password("root", "password", "1.0", "bench")
    try:
        vm = next(
            ref
            for ref, r in session.xenapi.VM.get_all_records().items()
            if not r["is_a_template"] and not r["is_control_domain"]
        )
        timings = []
        for index in range(calls):
            started = time.perf_counter()
            session.xenapi.VM.set_name_label(vm, f"direct-{index}")
            timings.append(time.perf_counter() - started)
        return timings
    finally:
        session.xenapi.session.logout()


def time_xapi_calls(connection: PoolConnection, prefix: str) -> list[float]:
    """Durations of the connection's calls whose method starts with `prefix` (the forwarded
    ones; the barriers' `event.inject` are not counted)."""
    durations: list[float] = []
    call = connection.call

    async def timed(method: str, *args: Any, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call(method, *args, **options)
        finally:
            if method.startswith(prefix):
                durations.append(time.perf_counter() - started)

    connection.call = timed  # type: ignore[method-assign]
    return durations


async def sequential_sets(client: Client, vm_id: str, calls: int, **options: Any) -> list[float]:
    timings = []
    for index in range(calls):
        started = time.perf_counter()
        await client.call("vm.set", {"id": vm_id, "name_label": f"xod-{index}", **options})
        timings.append(time.perf_counter() - started)
    return timings


async def stale_reads(
    writer: Client, reader: Client, vm_id: str, reads: int
) -> dict[str, int | float]:
    """Write, then read at once: how many reads show the old name."""
    stale = 0
    read_ms: list[float] = []
    for index in range(reads):
        name = f"read-{reader is writer}-{index}"
        await writer.call("vm.set", {"id": vm_id, "name_label": name})
        started = time.perf_counter()
        found = await reader.call("xo.getAllObjects", {"filter": {"id": vm_id}})
        read_ms.append((time.perf_counter() - started) * 1000)
        stale += found[vm_id]["name_label"] != name
    return {"stale": stale, "of": reads, "read_p50_ms": round(statistics.median(read_ms), 3)}


async def through_xod(url: str, calls: int, reads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state_dir:
        async with (
            running_xod(Path(state_dir)) as app,
            connect(app) as client,
            connect(app) as other,
        ):
            await client.sign_in()
            await other.sign_in()
            server_id = await client.call(
                "server.add", {"host": url, "username": "root", "password": "password"}
            )
            await app.pools.sync_of(server_id).wait_synced()
            vms = await client.call(
                "xo.getAllObjects", {"filter": {"type": "VM", "power_state": "Halted"}}
            )
            vm_id = min(vms)
            xapi = time_xapi_calls(app.pools.sync_of(server_id).connection, "VM.")
            measured = await timed_with_xapi(
                app, xapi, lambda: sequential_sets(client, vm_id, calls)
            )
            waited = summary(await sequential_sets(client, vm_id, calls, _waitForCache=True))
            return {
                "vm_set": measured,
                "vm_set_wait_for_cache": waited,
                "reads_same_connection": await stale_reads(client, client, vm_id, reads),
                "reads_other_connection": await stale_reads(client, other, vm_id, reads),
            }


async def timed_with_xapi(
    app: XodApp, xapi: list[float], run: Callable[[], Awaitable[list[float]]]
) -> dict[str, float]:
    del xapi[:]
    timings = await run()
    result = summary(timings)
    own = sorted(t - x for t, x in zip(timings, xapi, strict=True))
    result["xod_own_p50_ms"] = round(own[len(own) // 2] * 1000, 3)
    result["xapi_call_p50_ms"] = round(statistics.median(xapi) * 1000, 3)
    return result


def summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "calls": len(timings),
        "mean_ms": round(statistics.fmean(timings) * 1000, 3),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--event-batch-delay", type=float, default=0.05)
    args = parser.parse_args()
    pool = {"hosts": 3, "vms": args.vms, "templates": 10, "seed": 1}
    with simulator_process(**pool, event_batch_delay=args.event_batch_delay) as url:
        direct = summary(direct_calls(url, args.calls))
        xod = asyncio.run(through_xod(url, args.calls, args.reads))
    print(
        orjson.dumps(
            {
                "benchmark": "vm.set sequential",
                "pool": pool,
                "event_batch_delay_s": args.event_batch_delay,
                "direct_xenapi": direct,
                **xod,
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
