"""Live-change fan-out benchmarks (issue #5). Prints one JSON object per run.

Three processes on loopback: the simulator (`python -m xod.sim --churn`), xod (this script in
`server` role, timing every `event.from` reply it applies), and the load generator (this script
in `clients` role, plain `websockets` clients). CPU and RSS are read from /proc for xod alone.

    PYTHONPATH=. .venv/bin/python bench/fanout_live.py latency [--clients 1000] [--rate 1000]
        [--duration 60] [--stalled 0] [--fields id,type,name_label,power_state]
    PYTHONPATH=. .venv/bin/python bench/fanout_live.py idle [--clients 10000]
    PYTHONPATH=. .venv/bin/python bench/fanout_live.py resume [--clients 1000] [--rate 1000]

latency: frame latency = client receive time − xod's receipt of the `event.from` reply that made
the revision (CLOCK_MONOTONIC is system-wide, so the processes' clocks agree).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import os
import resource
import socket
import statistics
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

PYTHON = sys.executable
TICKS = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- xod (server role) ---------------------------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD, cheap_hasher
    from xod import runtime
    from xod.cache.sync import PoolSync
    from xod.server.app import ServerConfig, XodApp
    from xod.store import Store

    raise_nofile()
    runtime.tune_process()  # xod runs as the daemon runs it (xod/daemon.py, xod/lifecycle.py)
    received: dict[int, float] = {}
    original = PoolSync.apply_reply

    async def timed_apply(self: PoolSync, reply: Any) -> None:
        now = time.monotonic()
        before = self.store.revision
        await original(self, reply)
        for revision in range(before + 1, self.store.revision + 1):
            received[revision] = now

    PoolSync.apply_reply = timed_apply  # type: ignore[method-assign]
    state_dir = Path(tempfile.mkdtemp(prefix="xod-bench-"))
    config = ServerConfig(
        state_dir=state_dir,
        port=0,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        store=Store.open(state_dir, cheap_hasher()),
        ws_send_buffer=args.send_buffer,
        bulk_load=runtime.bulk_load,  # GC off during a pool's load, heap frozen after it
    )
    app = XodApp(config)
    fanout_times: list[float] = []
    fanout_cpu: list[float] = []
    on_batch = app.fanout._on_batch

    def timed_batch(batch: Any) -> None:
        started, cpu = time.perf_counter(), time.thread_time()
        on_batch(batch)
        fanout_cpu.append(time.thread_time() - cpu)
        fanout_times.append(time.perf_counter() - started)

    app.fanout._on_batch = timed_batch  # type: ignore[method-assign]
    await app.start()
    url = f"ws://127.0.0.1:{app.port}/api/"
    async with websockets.connect(url, max_size=2**30) as ws:
        admin = _Rpc(ws)
        await admin.call("session.signIn", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        if args.sim_url:
            server_id = await admin.call(
                "server.add", {"host": args.sim_url, "username": "root", "password": "password"}
            )
            while not app.pools.status(server_id).synced:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        token = await admin.call("token.create", {"expiresIn": "1 day"})
    print(orjson.dumps({"port": app.port, "token": token}).decode(), flush=True)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "dump":
            dump = orjson.dumps({str(k): v for k, v in received.items()})
            await asyncio.to_thread(Path(line[1]).write_bytes, dump)
            print("dumped", flush=True)
        elif line[0] == "stats":
            times = sorted(fanout_times[len(fanout_times) // 2 :]) or [0.0]
            cpu = sorted(fanout_cpu[len(fanout_cpu) // 2 :]) or [0.0]
            stats = {
                **app.fanout.stats(),
                "fanout_cpu_ms_per_batch_p50": round(cpu[len(cpu) // 2] * 1000, 2),
                "fanout_ms_per_batch_p50": round(times[len(times) // 2] * 1000, 2),
                "fanout_ms_per_batch_max": round(times[-1] * 1000, 2),
                "batches": app.fanout.batches,
            }
            print(orjson.dumps(stats).decode(), flush=True)
        elif line[0] == "quit":
            break
    await app.stop()


class _Rpc:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self.next_id += 1
        request_id = self.next_id
        await self.ws.send(
            orjson.dumps(
                {"id": request_id, "jsonrpc": "2.0", "method": method, "params": params or {}}
            ).decode()
        )
        while True:
            reply = orjson.loads(await self.ws.recv())
            if reply.get("id") == request_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]


# -- load generator (clients role) ---------------------------------------------------------------


def _revision_of(frame: bytes) -> int:
    # The subscription frames are spliced as `…"revision":N,…`: no need to parse it all.
    start = frame.find(b'"revision":') + 11
    return int(frame[start : frame.index(b",", start)])


class LoadClient:
    def __init__(self, url: str, token: str, fields: list[str] | None) -> None:
        self.url = url
        self.token = token
        self.fields = fields
        self.ws: Any = None
        self.subscription: str | None = None
        self.revision = 0
        self.recording = False
        self.arrivals: array.array[float] = array.array("d")
        self.revisions: array.array[int] = array.array("q")
        self.first_frame = asyncio.Event()

    async def connect(self, *, stalled: bool = False, all_notifications: bool = False) -> None:
        sock = None
        options: dict[str, Any] = {}
        if stalled:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            host, port = self.url.split("//")[1].split("/")[0].split(":")
            await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
            options = {"sock": sock, "max_queue": 1}
        self.ws = await websockets.connect(
            self.url, compression=None, max_size=2**30, ping_interval=None, **options
        )
        rpc = _Rpc(self.ws)
        await rpc.call("session.signIn", {"token": self.token})
        if not all_notifications:
            await rpc.call("xod.setAllNotifications", {"enabled": False})
        self._rpc = rpc

    async def subscribe(self, since: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.fields:
            params["fields"] = self.fields
        if since is not None:
            params["since"] = since
        result = await self._rpc.call("xod.subscribe", params)
        self.subscription = result["subscription"]
        return result

    async def receive(self) -> None:
        arrivals, revisions = self.arrivals, self.revisions
        ws = self.ws
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                frame = await ws.recv(decode=False)  # bytes: no UTF-8 round trip
                now = time.monotonic()
                if not frame.startswith(b'{"jsonrpc":"2.0","method":"xod.changes"'):
                    continue
                revision = _revision_of(frame)
                self.revision = revision
                self.first_frame.set()
                if self.recording:
                    arrivals.append(now)
                    revisions.append(revision)


async def _gather_limited(coroutines: list[Any], limit: int = 100) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def run(coroutine: Any) -> Any:
        async with semaphore:
            return await coroutine

    return await asyncio.gather(*(run(c) for c in coroutines))


async def load(args: argparse.Namespace) -> None:
    raise_nofile()
    url = f"ws://127.0.0.1:{args.port}/api/"
    fields = args.fields.split(",") if args.fields else None
    clients = [LoadClient(url, args.token, fields) for _ in range(args.count)]
    stalled = [LoadClient(url, args.token, fields) for _ in range(args.stalled)]
    tasks: list[asyncio.Task[None]] = []

    async def start(client: LoadClient) -> None:
        await client.connect(all_notifications=args.idle)
        if not args.idle:
            await client.subscribe()
            # Reading starts right away: the snapshot must not pile up behind the others.
            tasks.append(asyncio.create_task(client.receive()))

    async def start_stalled(client: LoadClient) -> None:
        await client.connect(stalled=True)
        await client.subscribe()  # …and never reads again

    await _gather_limited([start(c) for c in clients])
    await _gather_limited([start_stalled(c) for c in stalled])
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    while line := (await reader.readline()).decode().split():
        command = line[0]
        if command == "go":
            for client in clients:
                client.recording = True
            print("going", flush=True)
        elif command == "stop":
            for client in clients:
                client.recording = False
            arrivals = array.array("d")
            revisions = array.array("q")
            for client in clients:
                arrivals.extend(client.arrivals)
                revisions.extend(client.revisions)
            await asyncio.to_thread(Path(line[1]).write_bytes, arrivals.tobytes())
            await asyncio.to_thread(Path(line[1] + ".rev").write_bytes, revisions.tobytes())
            print("stopped", flush=True)
        elif command == "resume":
            # Drop every connection at once, wait, then come back with the last revision seen.
            last = [c.revision for c in clients]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)
            await asyncio.sleep(float(line[1]))
            started = time.monotonic()
            gone = 0

            phases = {"connect_and_sign_in": 0.0, "subscribe": 0.0, "first_frame": 0.0}

            async def back(client: LoadClient, since: int, phases: dict[str, float]) -> None:
                nonlocal gone
                client.first_frame = asyncio.Event()
                t0 = time.monotonic()
                await client.connect()
                t1 = time.monotonic()
                try:
                    await client.subscribe(since)
                except RuntimeError:
                    gone += 1
                    return
                t2 = time.monotonic()
                task = asyncio.create_task(client.receive())
                tasks.append(task)
                await client.first_frame.wait()
                phases["connect_and_sign_in"] += t1 - t0
                phases["subscribe"] += t2 - t1
                phases["first_frame"] += time.monotonic() - t2

            await _gather_limited(
                [back(c, s, phases) for c, s in zip(clients, last, strict=True)], args.concurrency
            )
            total = time.monotonic() - started
            print(
                orjson.dumps(
                    {
                        "total_s": round(total, 3),
                        "gone": gone,
                        "resumed": len(clients) - gone,
                        "mean_phase_ms": {
                            k: round(v * 1000 / len(clients), 1) for k, v in phases.items()
                        },
                    }
                ).decode(),
                flush=True,
            )
        elif command == "quit":
            break
    for task in tasks:
        task.cancel()


# -- orchestration --------------------------------------------------------------------------------


class Role:
    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            text=True,
        )

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.process.args} ended")
        return line.strip()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("quit")
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def start_sim(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    sim = subprocess.Popen(
        [PYTHON, "-m", "xod.sim", "--hosts", "3", "--vms", str(args.vms), "--templates", "20",
         "--churn", str(args.rate), "--seed", "1", "--json"],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
    )  # fmt: skip
    assert sim.stdout is not None
    info = orjson.loads(sim.stdout.readline())
    return sim, info["master_url"]


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))]


def server_stats(server: Role) -> dict[str, Any]:
    """The fan-out's counters as the server process reads them now."""
    server.send("stats")
    stats: dict[str, Any] = orjson.loads(server.read())
    return stats


def wait_ready(generators: list[Role], warmup: float) -> None:
    """Every load generator connected and signed in, then `warmup` seconds to settle."""
    for generator in generators:
        assert generator.read() == "ready"
    time.sleep(warmup)


def start_load(generators: list[Role]) -> None:
    for generator in generators:
        generator.send("go")
        assert generator.read() == "going"


def collect_latencies(server: Role, generators: list[Role]) -> list[float]:
    """Stop the load generators; each frame's delay (ms, sorted): its arrival at a client
    against the time the server handed its revision to the fan-out."""
    arrivals, revisions = array.array("d"), array.array("q")
    with tempfile.TemporaryDirectory() as tmp:
        for i, generator in enumerate(generators):
            generator.send(f"stop {tmp}/arrivals{i}")
            assert generator.read() == "stopped"
            arrivals.frombytes(Path(f"{tmp}/arrivals{i}").read_bytes())
            revisions.frombytes(Path(f"{tmp}/arrivals{i}.rev").read_bytes())
        server.send(f"dump {tmp}/received")
        assert server.read() == "dumped"
        dumped = orjson.loads(Path(f"{tmp}/received").read_bytes())
        received = {int(k): v for k, v in dumped.items()}
    return sorted(
        (a - received[r]) * 1000 for a, r in zip(arrivals, revisions, strict=True) if r in received
    )


def run_latency(args: argparse.Namespace) -> dict[str, Any]:
    sim, sim_url = start_sim(args)
    server_argv = [PYTHON, __file__, "server", "--sim-url", sim_url]
    if args.send_buffer:
        server_argv += ["--send-buffer", str(args.send_buffer)]
    server = Role(server_argv)
    try:
        boot = orjson.loads(server.read())
        share = args.clients // args.procs
        generators = [
            Role(
                [
                    PYTHON,
                    __file__,
                    "clients",
                    "--port",
                    str(boot["port"]),
                    "--token",
                    boot["token"],
                    "--count",
                    str(share),
                    "--stalled",
                    str(args.stalled if i == 0 else 0),
                    "--fields",
                    args.fields,
                ]
            )
            for i in range(args.procs)
        ]
        try:
            wait_ready(generators, args.warmup)
            start_load(generators)
            cpu0, t0 = cpu_seconds(server.process.pid), time.monotonic()
            load0 = sum(cpu_seconds(g.process.pid) for g in generators)
            sim0 = cpu_seconds(sim.pid)
            time.sleep(args.duration)
            cpu1, t1 = cpu_seconds(server.process.pid), time.monotonic()
            load1 = sum(cpu_seconds(g.process.pid) for g in generators)
            sim1 = cpu_seconds(sim.pid)
            rss = rss_bytes(server.process.pid)
            latencies = collect_latencies(server, generators)
            stats = server_stats(server)
        finally:
            for generator in generators:
                generator.close()
    finally:
        server.close()
        sim.terminate()
        sim.wait(10)
    window = t1 - t0
    return {
        "scenario": "latency" if not args.stalled else "latency-with-stalled",
        "clients": args.clients,
        "stalled_clients": args.stalled,
        "changes_per_s": args.rate,
        "fields": args.fields,
        "duration_s": round(window, 1),
        "frames_measured": len(latencies),
        "frames_per_s": round(len(latencies) / window),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(latencies[-1], 1),
            "mean": round(statistics.fmean(latencies), 1),
        },
        "xod_cpu_pct_of_one_core": round(100 * (cpu1 - cpu0) / window, 1),
        "simulator_cpu_pct": round(100 * (sim1 - sim0) / window, 1),
        "load_generator_cpu_pct": round(100 * (load1 - load0) / window, 1),
        "load_generator_processes": args.procs,
        "send_buffer": args.send_buffer,
        "xod_rss_mib": round(rss / 2**20, 1),
        "fanout": stats,
    }


def run_idle(args: argparse.Namespace) -> dict[str, Any]:
    server = Role([PYTHON, __file__, "server"])
    try:
        boot = orjson.loads(server.read())
        time.sleep(1)
        rss0 = rss_bytes(server.process.pid)
        clients = Role(
            [PYTHON, __file__, "clients", "--port", str(boot["port"]), "--token", boot["token"],
             "--count", str(args.clients), "--idle"]
        )  # fmt: skip
        try:
            started = time.monotonic()
            assert clients.read() == "ready"
            connect_s = time.monotonic() - started
            time.sleep(2)
            rss1 = rss_bytes(server.process.pid)
            cpu0, t0 = cpu_seconds(server.process.pid), time.monotonic()
            time.sleep(args.duration)
            cpu1, t1 = cpu_seconds(server.process.pid), time.monotonic()
            stats = server_stats(server)
        finally:
            clients.close()
    finally:
        server.close()
    return {
        "scenario": "idle",
        "clients": args.clients,
        "connect_and_sign_in_s": round(connect_s, 1),
        "rss_before_mib": round(rss0 / 2**20, 1),
        "rss_after_mib": round(rss1 / 2**20, 1),
        "rss_per_connection_kib": round((rss1 - rss0) / args.clients / 1024, 2),
        "idle_cpu_pct_of_one_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
        "idle_window_s": round(t1 - t0, 1),
        "fanout": stats,
    }


def run_resume(args: argparse.Namespace) -> dict[str, Any]:
    sim, sim_url = start_sim(args)
    server = Role([PYTHON, __file__, "server", "--sim-url", sim_url])
    try:
        boot = orjson.loads(server.read())
        share = args.clients // args.procs
        generators = [
            Role(
                [PYTHON, __file__, "clients", "--port", str(boot["port"]),
                 "--token", boot["token"], "--count", str(share), "--fields", args.fields,
                 "--concurrency", str(args.concurrency)]
            )
            for _ in range(args.procs)
        ]  # fmt: skip
        try:
            wait_ready(generators, args.warmup)
            server_cpu0 = cpu_seconds(server.process.pid)
            load_cpu0 = sum(cpu_seconds(g.process.pid) for g in generators)
            for generator in generators:
                generator.send(f"resume {args.offline}")
            results = [orjson.loads(g.read()) for g in generators]
            # CPU over the offline pause plus the reconnection (the pause is near idle).
            xod_cpu = cpu_seconds(server.process.pid) - server_cpu0
            load_cpu = sum(cpu_seconds(g.process.pid) for g in generators) - load_cpu0
        finally:
            for generator in generators:
                generator.close()
    finally:
        server.close()
        sim.terminate()
        sim.wait(10)
    return {
        "scenario": "resume",
        "clients": share * args.procs,
        "load_generator_processes": args.procs,
        "changes_per_s": args.rate,
        "offline_s": args.offline,
        "total_s": max(r["total_s"] for r in results),
        "gone": sum(r["gone"] for r in results),
        "resumed": sum(r["resumed"] for r in results),
        "mean_phase_ms": results[0]["mean_phase_ms"],
        "xod_cpu_s": round(xod_cpu, 2),
        "load_generator_cpu_s": round(load_cpu, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    latency = sub.add_parser("latency")
    idle = sub.add_parser("idle")
    resume = sub.add_parser("resume")
    for p in (latency, resume):
        p.add_argument("--clients", type=int, default=1000)
        p.add_argument("--rate", type=float, default=1000)
        p.add_argument("--vms", type=int, default=1000)
        p.add_argument("--fields", default="id,type,name_label,power_state")
        p.add_argument("--warmup", type=float, default=5)
    latency.add_argument("--duration", type=float, default=60)
    latency.add_argument("--stalled", type=int, default=0)
    latency.add_argument("--procs", type=int, default=2, help="load generator processes")
    latency.add_argument(
        "--send-buffer",
        type=int,
        default=64 * 1024,
        help="SO_SNDBUF of xod's client sockets, so stalled clients back up into xod quickly",
    )
    idle.add_argument("--clients", type=int, default=10000)
    idle.add_argument("--duration", type=float, default=30)
    resume.add_argument("--offline", type=float, default=2.0)
    resume.add_argument("--concurrency", type=int, default=1000)
    resume.add_argument("--procs", type=int, default=2, help="load generator processes")
    server = sub.add_parser("server")
    server.add_argument("--sim-url")
    server.add_argument("--send-buffer", type=int, default=None)
    clients = sub.add_parser("clients")
    clients.add_argument("--port", type=int, required=True)
    clients.add_argument("--token", required=True)
    clients.add_argument("--count", type=int, default=1000)
    clients.add_argument("--stalled", type=int, default=0)
    clients.add_argument("--fields", default="")
    clients.add_argument("--idle", action="store_true")
    clients.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    if args.command == "server":
        profile_path = os.environ.get("XOD_BENCH_PROFILE")
        if profile_path:  # a cProfile of the whole xod process, for digging
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
            try:
                asyncio.run(serve(args))
            finally:
                profiler.disable()
                profiler.dump_stats(profile_path)
        else:
            asyncio.run(serve(args))
    elif args.command == "clients":
        asyncio.run(load(args))
    else:
        runner = {"latency": run_latency, "idle": run_idle, "resume": run_resume}[args.command]
        print(orjson.dumps(runner(args), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
