"""Per-user views under load (issue #16): 1000 WebSocket clients in 100 distinct views, the
simulator churning ~1000 changes/s. Prints one JSON object.

    PYTHONPATH=. .venv/bin/python bench/fanout_views.py [--clients 1000] [--views 100]
        [--rate 1000] [--duration 30] [--vms 1000]

Processes as in bench/fanout_live.py (whose server role, load client and helpers this reuses):
the simulator, xod, and two load generators. Users have the permission `none` and ACLs: most
views are `viewer` on 10 VMs each, one in ten is `viewer` on a host (a third of the pool's VMs)
plus one VM, so a change touches a few views, never all. Each client keeps XO's `all`
notifications on and subscribes (`xod.subscribe`, a few fields): the latency is measured on
the subscription's frames (they carry the revision), which leave right after the `all` frame of
the same view and batch.

Targets: delivery p99 ≤ 100 ms; encodings per batch ≤ views the batch touched (one `all`
encoding and one subscription encoding per view touched, whatever its number of clients); xod
≤ 60 % of a core.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fanout_live import (  # noqa: E402  (after the path: run as a script)
    PYTHON,
    LoadClient,
    Role,
    _gather_limited,
    _Rpc,
    collect_latencies,
    cpu_seconds,
    percentile,
    raise_nofile,
    rss_bytes,
    serve,
    server_stats,
    start_load,
    start_sim,
    wait_ready,
)

PASSWORD = "bench viewer password"
FIELDS = ["id", "type", "name_label", "power_state"]


async def make_views(port: int, admin_token: str, views: int) -> list[str]:
    """One user per view (permission none) with its ACLs; a token of each, in view order."""
    url = f"ws://127.0.0.1:{port}/api/"
    async with websockets.connect(url, max_size=2**30) as ws:
        admin = _Rpc(ws)
        await admin.call("session.signIn", {"token": admin_token})
        vms = sorted(await admin.call("xo.getAllObjects", {"filter": {"type": "VM"}}))
        hosts = sorted(await admin.call("xo.getAllObjects", {"filter": {"type": "host"}}))
        users = []
        for k in range(views):
            email = f"view{k}@bench.test"
            user_id = await admin.call(
                "user.create", {"email": email, "password": PASSWORD, "permission": "none"}
            )
            if k % 10 == 9:
                granted = [hosts[k % len(hosts)], vms[k % len(vms)]]
            else:
                granted = [vms[(10 * k + i) % len(vms)] for i in range(10)]
            for object_id in granted:
                await admin.call(
                    "acl.add", {"subject": user_id, "object": object_id, "action": "viewer"}
                )
            users.append(email)
    tokens = []
    for email in users:
        async with websockets.connect(url) as ws:
            rpc = _Rpc(ws)
            await rpc.call("session.signIn", {"email": email, "password": PASSWORD})
            tokens.append(await rpc.call("token.create", {"expiresIn": "1 day"}))
    return tokens


async def load(args: argparse.Namespace) -> None:
    """A load generator: `count` clients, client i signed in with token (offset + i) mod n."""
    raise_nofile()
    url = f"ws://127.0.0.1:{args.port}/api/"
    tokens = orjson.loads(await asyncio.to_thread(Path(args.tokens).read_bytes))
    clients = [
        LoadClient(url, tokens[(args.offset + i) % len(tokens)], FIELDS) for i in range(args.count)
    ]
    tasks: list[asyncio.Task[None]] = []

    async def start(client: LoadClient) -> None:
        await client.connect(all_notifications=True)
        await client.subscribe()
        tasks.append(asyncio.create_task(client.receive()))

    await _gather_limited([start(c) for c in clients])
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    while line := (await reader.readline()).decode().split():
        if line[0] == "go":
            for client in clients:
                client.recording = True
            print("going", flush=True)
        elif line[0] == "stop":
            arrivals, revisions = array.array("d"), array.array("q")
            for client in clients:
                client.recording = False
                arrivals.extend(client.arrivals)
                revisions.extend(client.revisions)
            await asyncio.to_thread(Path(line[1]).write_bytes, arrivals.tobytes())
            await asyncio.to_thread(Path(line[1] + ".rev").write_bytes, revisions.tobytes())
            print("stopped", flush=True)
        elif line[0] == "quit":
            break
    for task in tasks:
        task.cancel()


def serve_timed(args: argparse.Namespace) -> None:
    """bench/fanout_live.py's xod, with the CPU of each batch's views work (the visibility
    updates, then every touched view's encodings and writes) in its stats."""
    from xod.api.views import Views
    from xod.server.fanout import Fanout

    cpu: list[float] = []
    apply, stats = Views.apply, Fanout.stats

    def timed_apply(self: Views, batch: Any) -> None:
        started = time.thread_time()
        apply(self, batch)
        cpu.append(time.thread_time() - started)

    def timed_stats(self: Fanout) -> dict[str, Any]:
        tail = sorted(cpu[len(cpu) // 2 :]) or [0.0]
        return {**stats(self), "views_cpu_ms_per_batch_p50": round(tail[len(tail) // 2] * 1e3, 2)}

    Views.apply = timed_apply  # type: ignore[method-assign]
    Fanout.stats = timed_stats  # type: ignore[assignment,method-assign]
    asyncio.run(serve(args))


def run(args: argparse.Namespace) -> dict[str, Any]:
    sim, sim_url = start_sim(args)
    server = Role([PYTHON, __file__, "server", "--sim-url", sim_url])
    try:
        boot = orjson.loads(server.read())
        tokens = asyncio.run(make_views(boot["port"], boot["token"], args.views))
        with tempfile.TemporaryDirectory() as tmp:
            Path(f"{tmp}/tokens").write_bytes(orjson.dumps(tokens))
            share = args.clients // args.procs
            generators = [
                Role([PYTHON, __file__, "clients", "--port", str(boot["port"]),
                      "--tokens", f"{tmp}/tokens", "--offset", str(i * share),
                      "--count", str(share)])
                for i in range(args.procs)
            ]  # fmt: skip
            try:
                wait_ready(generators, args.warmup)
                before = server_stats(server)
                start_load(generators)
                cpu0, t0 = cpu_seconds(server.process.pid), time.monotonic()
                time.sleep(args.duration)
                cpu1, t1 = cpu_seconds(server.process.pid), time.monotonic()
                after = server_stats(server)
                rss = rss_bytes(server.process.pid)
                latencies = collect_latencies(server, generators)
            finally:
                for generator in generators:
                    generator.close()
    finally:
        server.close()
        sim.terminate()
        sim.wait(10)
    window = t1 - t0
    batches = max(1, after["batches"] - before["batches"])
    touched = max(1, after["view_batches"] - before["view_batches"])
    all_encodes = after["view_encodes"] - before["view_encodes"]
    scope_encodes = after["view_scope_encodes"] - before["view_scope_encodes"]
    return {
        "scenario": "views",
        "clients": share * args.procs,
        "views": after["views"],
        "view_connections": after["view_connections"],
        "changes_per_s": args.rate,
        "duration_s": round(window, 1),
        "batches": batches,
        "frames_measured": len(latencies),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1) if latencies else None,
            "p99": round(percentile(latencies, 0.99), 1) if latencies else None,
            "max": round(latencies[-1], 1) if latencies else None,
        },
        "views_touched_per_batch": round(touched / batches, 2),
        "all_encodes_per_batch": round(all_encodes / batches, 2),
        "subscription_encodes_per_batch": round(scope_encodes / batches, 2),
        "all_encodes_per_view_touched": round(all_encodes / touched, 3),
        "subscription_encodes_per_view_touched": round(scope_encodes / touched, 3),
        "xod_cpu_pct_of_one_core": round(100 * (cpu1 - cpu0) / window, 1),
        "views_cpu_ms_per_batch_p50": after["views_cpu_ms_per_batch_p50"],
        "xod_rss_mib": round(rss / 2**20, 1),
        "targets": {"p99_ms": 100, "encodes_per_view_touched": 1, "xod_cpu_pct": 60},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    clients = sub.add_parser("clients")
    clients.add_argument("--port", type=int, required=True)
    clients.add_argument("--tokens", required=True)
    clients.add_argument("--offset", type=int, default=0)
    clients.add_argument("--count", type=int, default=500)
    server = sub.add_parser("server")
    server.add_argument("--sim-url")
    server.add_argument("--send-buffer", type=int, default=None)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--views", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    args = parser.parse_args()
    if args.command == "clients":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(load(args))
    elif args.command == "server":
        serve_timed(args)
    else:
        print(orjson.dumps(run(args), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
