"""500 sequential vm.set calls through xod (each answered once the cache shows the change)
against the same calls made straight to the simulator with the official `XenAPI` client.
Prints JSON: time per call both ways and the ratio, for xapi's 50 ms event batching (what a
real pool does) and without it (xod's own overhead).

    PYTHONPATH=. .venv/bin/python bench/commands_vm_set.py [--calls 500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import XenAPI

from bench.commands_sim import simulator_process
from tests.api.harness import connect, running_xod

POOL = {"hosts": 1, "vms": 50, "templates": 2, "seed": 1}


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


async def xod_calls(url: str, calls: int) -> list[float]:
    with tempfile.TemporaryDirectory() as state_dir:
        async with running_xod(Path(state_dir)) as app, connect(app) as client:
            await client.sign_in()
            server_id = await client.call(
                "server.add", {"host": url, "username": "root", "password": "password"}
            )
            await app.pools.sync_of(server_id).wait_synced()
            vms = await client.call("xo.getAllObjects", {"filter": {"type": "VM"}})
            vm_id = min(vms)
            timings = []
            for index in range(calls):
                started = time.perf_counter()
                await client.call("vm.set", {"id": vm_id, "name_label": f"xod-{index}"})
                timings.append(time.perf_counter() - started)
            assert app.objects.get(vm_id)["name_label"] == f"xod-{calls - 1}"
            return timings


def summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "total_s": round(sum(timings), 3),
        "mean_ms": round(statistics.fmean(timings) * 1000, 3),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
    }


def measure(calls: int, event_batch_delay: float) -> dict:
    with simulator_process(**POOL, event_batch_delay=event_batch_delay) as url:
        direct = summary(direct_calls(url, calls))
        through_xod = summary(asyncio.run(xod_calls(url, calls)))
    return {
        "event_batch_delay_s": event_batch_delay,
        "direct_xenapi": direct,
        "through_xod": through_xod,
        "ratio": round(through_xod["total_s"] / direct["total_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    results = [measure(args.calls, delay) for delay in (0.05, 0.0)]
    print(
        orjson.dumps(
            {"benchmark": "vm.set sequential", "calls": args.calls, "runs": results}
        ).decode()
    )


if __name__ == "__main__":
    main()
