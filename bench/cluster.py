"""Cluster benchmarks (issue #17). Prints one JSON object.

One simulated pool in this process (its VMs' names stamped with CLOCK_MONOTONIC at `--rate`
changes per second), followed at the same time by two set-ups, so that both see the same
changes under the same machine load:

- single: one `xod serve` without NATS;
- cluster: a nats-server (JetStream) and three `xod serve` processes; the clients are on an
  instance that does not own the pool, so every change goes owner → stream → replica → client.

Figures: change-to-client latency p50/p99 of each set-up (a client's receive time − the stamp,
on a few clients reading every VM name) and what the cluster adds, each xod's CPU per 1000
subscribed clients (`--clients` readers per set-up, each set-up's in its own process; CPU from
/proc over the measured window), and a replica's ingest rate: a fourth instance started once
the stream holds the run's history, timed while it applies it.

    PYTHONPATH=. .venv/bin/python bench/cluster.py [--vms 200] [--rate 100] [--duration 20]
        [--clients 500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD  # noqa: E402
from tests.cluster.cluster_support import wait_log_entry  # noqa: E402
from tests.cluster.nats_server import NatsServer  # noqa: E402
from tests.daemon.helpers import XodProcess  # noqa: E402

PYTHON = sys.executable
TICKS = os.sysconf("SC_CLK_TCK")
LATENCY_CLIENTS = 5
VM_FILTER = {"filter": "type:/^VM$/", "fields": ["name_label"]}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


class Rpc:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.frames: asyncio.Queue[Any] = asyncio.Queue()

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self.next_id += 1
        request_id = self.next_id
        await self.ws.send(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                                         "params": params or {}}).decode())  # fmt: skip
        while True:
            reply = orjson.loads(await self.ws.recv())
            if reply.get("id") == request_id:
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                return reply["result"]
            self.frames.put_nowait(reply)


async def open_client(url: str, token: str) -> Rpc:
    ws = await websockets.connect(url.replace("http", "ws", 1) + "/api/", max_size=2**30)
    client = Rpc(ws)
    await client.call("session.signInWithToken", {"token": token})
    await client.call("xod.subscribe", VM_FILTER)
    return client


# -- the readers' process ("load" role) ----------------------------------------------------------


async def load(url: str, token: str, count: int) -> None:
    """`count` subscribed clients that read everything, until stdin closes."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    clients: list[Rpc] = []
    for start in range(0, count, 50):
        clients += await asyncio.gather(
            *(open_client(url, token) for _ in range(min(50, count - start)))
        )

    async def drain(client: Rpc) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _frame in client.ws:
                pass

    readers = [asyncio.ensure_future(drain(c)) for c in clients]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for reader in readers:
        reader.cancel()


# -- the measured set-ups ------------------------------------------------------------------------


async def admin_token(url: str) -> str:
    async with websockets.connect(url.replace("http", "ws", 1) + "/api/") as ws:
        client = Rpc(ws)
        await client.call("session.signIn", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        token: str = await client.call("token.create", {"expiresIn": 3600 * 1000})
        return token


async def add_pool(url: str, sim: Any) -> str:
    async with websockets.connect(url.replace("http", "ws", 1) + "/api/") as ws:
        client = Rpc(ws)
        await client.call("session.signIn", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        server_id: str = await client.call(
            "server.add", {"host": sim.master_url, "username": "root", "password": "password"}
        )
        return server_id


def spawn(tmp: Path, name: str, nats_url: str | None) -> XodProcess:
    env = {"XOD_ADMIN_EMAIL": ADMIN_EMAIL, "XOD_ADMIN_PASSWORD": ADMIN_PASSWORD}
    if nats_url:
        env |= {"XOD_CLUSTER_NATS": nats_url, "XOD_CLUSTER_INSTANCE": name}
    home = tmp / name
    home.mkdir()
    return XodProcess(
        ["--listen", "127.0.0.1:0", "--state-dir", str(home / "state")], home, env=env
    )


async def readyz(url: str) -> tuple[int, dict[str, Any]]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as response:
        return response.status, await response.json()


async def wait_ready(urls: list[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    for url in urls:
        while (await readyz(url))[0] != 200:
            assert time.monotonic() < deadline, f"{url} not ready in {timeout} s"
            await asyncio.sleep(0.2)


async def stamp(sim: Any, rate: float, duration: float) -> int:
    """Rename the pool's user VMs in turn, each name the CLOCK_MONOTONIC time in ns."""
    vms = [ref for ref, r in sim.pool.db.tables["VM"].items()
           if not r["is_a_template"] and not r["is_control_domain"]]  # fmt: skip
    interval, sent = 1 / rate, 0
    end = time.monotonic() + duration
    while time.monotonic() < end:
        sim.pool.db.update("VM", vms[sent % len(vms)], {"name_label": f"t{time.monotonic_ns()}"})
        sent += 1
        await asyncio.sleep(interval)
    return sent


def start_readers(url: str, token: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, __file__, "load", url, token, str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


async def watch(client: Rpc, latencies: list[float]) -> None:
    async for frame in client.ws:
        now = time.monotonic_ns()
        params = orjson.loads(frame).get("params") or {}
        for obj in (params.get("enter") or {}).values():
            name = obj.get("name_label") or ""
            if name.startswith("t") and name[1:].isdigit():
                latencies.append((now - int(name[1:])) / 1e6)


async def measure(
    args: argparse.Namespace, sim: Any, targets: dict[str, str], processes: dict[str, XodProcess]
) -> dict[str, Any]:
    """The same stamped changes read at once through every target (set-up → client URL)."""
    tokens = {setup: await admin_token(url) for setup, url in targets.items()}
    readers = [
        await asyncio.to_thread(start_readers, url, tokens[setup], args.clients)
        for setup, url in targets.items()
    ]
    for reader in readers:
        assert reader.stdout is not None
        line = await asyncio.to_thread(reader.stdout.readline)
        assert line.strip() == "ready", line
    latencies: dict[str, list[float]] = {setup: [] for setup in targets}
    watchers = {
        setup: [await open_client(url, tokens[setup]) for _ in range(LATENCY_CLIENTS)]
        for setup, url in targets.items()
    }
    tasks = [
        asyncio.ensure_future(watch(client, latencies[setup]))
        for setup, clients in watchers.items()
        for client in clients
    ]
    await asyncio.sleep(1.0)  # the snapshots are in
    for values in latencies.values():
        values.clear()
    cpu_before = {name: cpu_seconds(p.proc.pid) for name, p in processes.items()}
    started = time.monotonic()
    changes = await stamp(sim, args.rate, args.duration)
    await asyncio.sleep(1.0)  # the last ones arrive
    elapsed = time.monotonic() - started
    cpu = {name: cpu_seconds(p.proc.pid) - cpu_before[name] for name, p in processes.items()}
    for task in tasks:
        task.cancel()
    for clients in watchers.values():
        for client in clients:
            await client.ws.close()
    for reader in readers:
        assert reader.stdin is not None
        reader.stdin.close()
        await asyncio.to_thread(reader.wait, 30)
    per_thousand = 1000 / (args.clients + LATENCY_CLIENTS)
    return {
        "changes": changes,
        "latency_ms": {
            setup: {
                "received": len(values),
                "p50": round(percentile(values, 0.50), 2),
                "p99": round(percentile(values, 0.99), 2),
            }
            for setup, values in latencies.items()
        },
        # Cores used per 1000 subscribed clients, over the window (the owner has none).
        "cpu_cores_per_1000_clients": {
            name: round(seconds / elapsed * per_thousand, 3) for name, seconds in cpu.items()
        },
    }


async def ingest(tmp: Path, nats_url: str) -> dict[str, Any]:
    """A fourth instance applies the whole stream at start: messages and changes per second."""
    late = spawn(tmp, "xod-4", nats_url)
    try:
        caught_up = await asyncio.to_thread(wait_log_entry, late, "replica caught up", 120)
        return {
            "messages": caught_up["messages"],
            "changes": caught_up["changes"],
            "seconds": caught_up["seconds"],
            "messages_per_second": round(caught_up["messages"] / caught_up["seconds"]),
            "changes_per_second": round(caught_up["changes"] / caught_up["seconds"]),
        }
    finally:
        await asyncio.to_thread(late.stop)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both set-ups at once on the same pool, so that they share the machine's load."""
    from xod.sim.pool import SimConfig
    from xod.sim.simulator import Simulator

    with tempfile.TemporaryDirectory(prefix="xod-bench-cluster-") as directory:
        tmp = Path(directory)
        async with Simulator(SimConfig(hosts=1, vms=args.vms, templates=2, seed=1)) as sim:
            with NatsServer(tmp / "nats") as nats:
                processes = {"single": spawn(tmp, "single", None)}
                processes |= {n: spawn(tmp, n, nats.url) for n in ("xod-1", "xod-2", "xod-3")}
                try:
                    urls = {n: await asyncio.to_thread(p.url, 60) for n, p in processes.items()}
                    await add_pool(urls["single"], sim)
                    await add_pool(urls["xod-1"], sim)
                    await wait_ready(list(urls.values()))
                    roles = {
                        n: (await readyz(u))[1]["cluster"]["role"]
                        for n, u in urls.items()
                        if n != "single"
                    }
                    replica = next(n for n, role in roles.items() if role == "replica")
                    targets = {"single": urls["single"], "cluster": urls[replica]}
                    result = await measure(args, sim, targets, processes)
                    ingest_figures = await ingest(tmp, nats.url)
                finally:
                    for process in processes.values():
                        await asyncio.to_thread(process.stop)
    latency = result["latency_ms"]
    return {
        "bench": "cluster",
        "vms": args.vms,
        "rate": args.rate,
        "duration": args.duration,
        "clients_per_setup": args.clients,
        "cluster_clients_on": replica,
        "roles": roles,
        **result,
        "p50_added_ms": round(latency["cluster"]["p50"] - latency["single"]["p50"], 2),
        "p99_added_ms": round(latency["cluster"]["p99"] - latency["single"]["p99"], 2),
        "replica_ingest": ingest_figures,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        asyncio.run(load(sys.argv[2], sys.argv[3], int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="stamped changes per second")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=500, help="subscribed readers")
    print(orjson.dumps(asyncio.run(run(parser.parse_args()))).decode())


if __name__ == "__main__":
    main()
