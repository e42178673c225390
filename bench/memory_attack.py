"""Memory under the "never sign in, never read" attack (issue #11 item 2). Prints one JSON object.

Three processes on loopback: the simulator (`python -m xod.sim`), xod (`python -m xod serve`,
as an operator runs it) and this script. The script registers the pool, then opens
`--connections` raw TCP sockets with a 4 KiB receive buffer (SO_RCVBUF), does the WebSocket
handshake on each and pipelines `--calls` `rpc.discover` requests (≈21 KiB replies each),
never signing in and never reading. xod's RSS (/proc/PID/status) is read before, during (its
peak), at the end of the attack, and after the sockets are closed. Meanwhile a signed-in
client keeps calling `system.getVersion`: its latency says whether xod still serves others.

    PYTHONPATH=. .venv/bin/python bench/memory_attack.py [--connections 100] [--calls 450]
        [--attack-seconds 20] [--xod-root DIR]

`--xod-root` runs the xod of another checkout (e.g. an older commit, for a before/after).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import websockets

from tests.server.raw_ws import client_frame

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ADMIN_EMAIL = "bench@example.org"
ADMIN_PASSWORD = "bench-Secret-42"
MiB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_for_line(path: Path, predicate: Any, what: str, timeout: float = 60.0) -> dict:
    """The first JSON line of `path` satisfying `predicate` (a process's output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = orjson.loads(line)
                if isinstance(entry, dict) and predicate(entry):
                    return entry
        time.sleep(0.1)
    raise TimeoutError(f"{what} not seen within {timeout} s in {path}:\n{path.read_text()[-2000:]}")


class Processes:
    """The simulator and xod, each writing to a file (a pipe nobody reads would fill up and
    block them)."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(args.xod_root)}
        env = {k: v for k, v in env.items() if not k.startswith("XOD_")}
        self.sim_out = work / "sim.out"
        self.xod_err = work / "xod.err"
        self.sim = subprocess.Popen(
            [PYTHON, "-m", "xod.sim", "--hosts", "3", "--vms", str(args.vms), "--templates",
             "20", "--json"],
            stdout=self.sim_out.open("wb"), stderr=subprocess.STDOUT, env=env,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.xod = subprocess.Popen(
            [PYTHON, "-m", "xod", "serve", "--listen", "127.0.0.1:0", "--state-dir",
             str(work / "state"), "--log-format", "json", "--set", f"admin.email={ADMIN_EMAIL}",
             "--set", f"admin.password={ADMIN_PASSWORD}"],
            stdout=(work / "xod.out").open("wb"), stderr=self.xod_err.open("wb"), env=env,
            stdin=subprocess.DEVNULL, cwd=work,
        )  # fmt: skip

    def sim_url(self) -> str:
        return wait_for_line(self.sim_out, lambda e: "master_url" in e, "the simulator's URL")[
            "master_url"
        ]

    def xod_url(self) -> str:
        entry = wait_for_line(self.xod_err, lambda e: e.get("event") == "listening", "listening")
        return entry["url"]

    def stop(self) -> None:
        for process in (self.xod, self.sim):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


class Rpc:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self.next_id += 1
        request_id = self.next_id
        message = {"id": request_id, "jsonrpc": "2.0", "method": method, "params": params or {}}
        await self.ws.send(orjson.dumps(message).decode())
        async with asyncio.timeout(60):
            while True:
                reply = orjson.loads(await self.ws.recv())
                if reply.get("id") == request_id:
                    break
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


async def attacker(host: str, port: int, calls: int) -> socket.socket:
    """A raw socket with a 4 KiB receive buffer: handshake, then `calls` pipelined requests,
    sent in the background (xod may stop reading them: back-pressure); never reads."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, port))
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    request = (
        f"GET /api/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    response = b""
    async with asyncio.timeout(30):
        while b"\r\n\r\n" not in response:
            response += await loop.sock_recv(sock, 4096)
    assert response.startswith(b"HTTP/1.1 101"), response[:200]
    frames = b"".join(
        client_frame(orjson.dumps({"jsonrpc": "2.0", "id": i, "method": "rpc.discover"}))
        for i in range(calls)
    )
    task = loop.create_task(loop.sock_sendall(sock, frames))
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return sock


async def clients_connected(url: str) -> float:
    """xod's own count of WebSocket clients (/metrics), the admin's included."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("xod_clients_connected "):
                return float(line.split()[1])
    raise RuntimeError("no xod_clients_connected in /metrics")


async def probe_latency(rpc: Rpc, stop: asyncio.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await rpc.call("system.getVersion")
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.2)


async def run(args: argparse.Namespace, processes: Processes) -> dict[str, Any]:
    sim_url = processes.sim_url()
    url = processes.xod_url()
    host, port = url.removeprefix("http://").rsplit(":", 1)
    pid = processes.xod.pid
    async with websockets.connect(f"ws://{host}:{port}/api/", max_size=2**30) as ws:
        admin = Rpc(ws)
        await admin.call("session.signIn", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        await admin.call(
            "server.add", {"host": sim_url, "username": "root", "password": "password"}
        )
        await admin.call("xo.getAllObjects")  # the cache is filled
        await asyncio.sleep(3)
        before = rss_bytes(pid)

        stop = asyncio.Event()
        latencies: list[float] = []
        prober = asyncio.create_task(probe_latency(admin, stop, latencies))
        started = time.monotonic()
        sockets = await asyncio.gather(
            *(attacker(host, int(port), args.calls) for _ in range(args.connections))
        )
        connected = time.monotonic() - started
        peak = before
        while time.monotonic() - started < args.attack_seconds:
            peak = max(peak, rss_bytes(pid))
            await asyncio.sleep(0.25)
        end_of_attack = rss_bytes(pid)
        for sock in sockets:
            sock.close()
        await asyncio.sleep(args.settle_seconds)
        after_close = rss_bytes(pid)
        clients_left = await clients_connected(f"http://{host}:{port}")
        stop.set()
        async with asyncio.timeout(30):
            await prober
    latencies.sort()
    return {
        "connections": args.connections,
        "calls_per_connection": args.calls,
        "attack_seconds": args.attack_seconds,
        "seconds_to_connect_all": round(connected, 2),
        "rss_before_mib": round(before / MiB, 1),
        "rss_peak_during_mib": round(peak / MiB, 1),
        "rss_end_of_attack_mib": round(end_of_attack / MiB, 1),
        "rss_after_close_mib": round(after_close / MiB, 1),
        "growth_peak_mib": round((peak - before) / MiB, 1),
        "growth_after_close_mib": round((after_close - before) / MiB, 1),
        "clients_connected_after_close": clients_left,
        "signed_in_calls_during_attack": len(latencies),
        "signed_in_call_ms_p50": round(latencies[len(latencies) // 2] * 1000, 1),
        "signed_in_call_ms_max": round(latencies[-1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--calls", type=int, default=450)
    parser.add_argument("--vms", type=int, default=500)
    parser.add_argument("--attack-seconds", type=float, default=20.0)
    parser.add_argument("--settle-seconds", type=float, default=14.0)
    parser.add_argument("--xod-root", type=Path, default=ROOT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xod-memory-attack-") as work:
        processes = Processes(args, Path(work))
        try:
            result = asyncio.run(run(args, processes))
        finally:
            processes.stop()
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
