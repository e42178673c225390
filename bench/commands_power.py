"""100 concurrent vm.start / vm.stop (half each) across a 1k-VM pool, pipelined on one JSON-RPC
connection to xod; every call answers once the cache shows its effect. Prints JSON: total time,
per-call latency, calls per second.

    PYTHONPATH=. .venv/bin/python bench/commands_power.py [--vms 1000] [--calls 100]
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
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.commands_sim import simulator_process
from tests.api.harness import connect, running_xod


async def pipelined(url: str, token_call: dict, requests: list[dict]) -> dict[int, tuple]:
    """Send every request at once on one connection; (latency, reply) per request id."""
    async with websockets.connect(url, max_size=2**30) as ws:
        await ws.send(orjson.dumps(token_call))
        while orjson.loads(await ws.recv()).get("id") != token_call["id"]:
            pass
        sent: dict[int, float] = {}
        for request in requests:
            sent[request["id"]] = time.perf_counter()
            await ws.send(orjson.dumps(request))
        replies: dict[int, tuple] = {}
        while len(replies) < len(requests):
            message = orjson.loads(await ws.recv())
            if isinstance(message, dict) and message.get("id") in sent:
                replies[message["id"]] = (time.perf_counter() - sent[message["id"]], message)
        return replies


async def run(vms: int, calls: int) -> dict:
    with (
        simulator_process(hosts=3, vms=vms, templates=4, seed=1) as sim_url,
        tempfile.TemporaryDirectory() as state_dir,
    ):
        async with running_xod(Path(state_dir)) as app, connect(app) as admin:
            await admin.sign_in()
            token = await admin.call("token.create", {"description": "bench"})
            server_id = await admin.call(
                "server.add", {"host": sim_url, "username": "root", "password": "password"}
            )
            await app.pools.sync_of(server_id).wait_synced()
            objects = app.objects.by_type("VM")
            halted = sorted(i for i, o in objects.items() if o["power_state"] == "Halted")
            running = sorted(i for i, o in objects.items() if o["power_state"] == "Running")
            starts, stops = halted[: calls // 2], running[: calls - calls // 2]
            requests = [
                {"jsonrpc": "2.0", "id": n, "method": method, "params": {"id": vm_id}}
                for n, (method, vm_id) in enumerate(
                    [("vm.start", v) for v in starts] + [("vm.stop", v) for v in stops], 1
                )
            ]
            sign_in = {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "session.signIn",
                "params": {"token": token},
            }
            started = time.perf_counter()
            replies = await pipelined(f"{app.url.replace('http', 'ws')}/api/", sign_in, requests)
            total = time.perf_counter() - started
            failures = [r for _, r in replies.values() if "error" in r]
            states = [app.objects.get(v)["power_state"] for v in starts] + [
                app.objects.get(v)["power_state"] for v in stops
            ]
            expected = ["Running"] * len(starts) + ["Halted"] * len(stops)
            latencies = sorted(latency for latency, _ in replies.values())
            return {
                "benchmark": "concurrent vm.start/vm.stop",
                "pool_vms": len(objects),
                "calls": len(requests),
                "starts": len(starts),
                "stops": len(stops),
                "failures": len(failures),
                "first_failure": failures[0]["error"] if failures else None,
                "cache_shows_every_effect": states == expected,
                "total_s": round(total, 3),
                "calls_per_s": round(len(requests) / total, 1),
                "latency_mean_ms": round(statistics.fmean(latencies) * 1000, 1),
                "latency_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
                "latency_max_ms": round(latencies[-1] * 1000, 1),
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args.vms, args.calls))).decode())


if __name__ == "__main__":
    main()
