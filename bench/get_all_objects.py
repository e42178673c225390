"""`xo.getAllObjects` of a big pool over a real WebSocket: time to the first and last byte as a
client in another process sees it, the xod process's CPU time for the call, and its RSS before
and after the first listing (the cache keeps each listed object's JSON until it changes).

    PYTHONPATH=. .venv/bin/python bench/get_all_objects.py [--vms 10000] [--runs 5]

The simulator and the client are child processes; xod runs in this one, tuned as the daemon
tunes it (xod/runtime.py). Each run: the client sends the call and reads its reply to the last
byte (frames before it — pings, notifications — are skipped); `server_cpu_ms` is the
`time.process_time` of this process over that span (nothing else runs in it meanwhile). Target
(issue #13): 10k VMs ≤ 150 ms to the last byte. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.cache_sync import ADMIN_EMAIL, ADMIN_PASSWORD, rss_bytes, start_simulator, start_xod  # noqa: E402  (after the path: run as a script)
from tests.server.raw_ws import client_frame  # noqa: E402

TARGET_TOTAL_MS = 150.0


# -- the client (a child process) ------------------------------------------------------------


def client(port: int) -> None:
    """Signs in, then on each line of stdin calls xo.getAllObjects and prints its timing.

    A blocking socket reading each frame straight into one buffer: the client costs as little
    as a client can, so the figures are xod's."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    handshake = b""
    while b"\r\n\r\n" not in handshake:
        handshake += sock.recv(4096)
    pending = bytearray(handshake.partition(b"\r\n\r\n")[2])

    def read_exactly(length: int) -> bytearray:
        nonlocal pending
        buffer = bytearray(length)
        view = memoryview(buffer)
        taken = min(len(pending), length)
        view[:taken] = pending[:taken]
        del pending[:taken]
        while taken < length:
            got = sock.recv_into(view[taken:])
            if not got:
                raise ConnectionError("xod closed the connection")
            taken += got
        return buffer

    def reply_to(call_id: int) -> tuple[bytearray, float, float]:
        """The reply to `call_id`, and when its first and last bytes arrived (parsing it, to
        know it is the reply, comes after: the figure is xod's, not the client's parser's)."""
        while True:
            head = read_exactly(2)
            first_byte = time.perf_counter()
            length = head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(read_exactly(2), "big")
            elif length == 127:
                length = int.from_bytes(read_exactly(8), "big")
            payload = read_exactly(length)
            last_byte = time.perf_counter()
            is_reply = head[0] & 0x0F == 0x1 and payload.startswith(b'{"id":')
            if is_reply and orjson.loads(payload).get("id") == call_id:
                return payload, first_byte, last_byte

    sign_in = {"id": 0, "jsonrpc": "2.0", "method": "session.signIn",
               "params": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}}  # fmt: skip
    sock.sendall(client_frame(orjson.dumps(sign_in)))
    reply_to(0)
    print("ready", flush=True)
    call_id = 0
    while sys.stdin.readline():
        call_id += 1
        call = {"id": call_id, "jsonrpc": "2.0", "method": "xo.getAllObjects"}
        start = time.perf_counter()
        sock.sendall(client_frame(orjson.dumps(call)))
        payload, first_byte, last_byte = reply_to(call_id)
        total = last_byte - start
        objects = len(orjson.loads(payload)["result"])
        figures = {
            "ttfb_ms": round((first_byte - start) * 1000, 1),
            "total_ms": round(total * 1000, 1),
            "bytes": len(payload),
            "objects": objects,
        }
        print(orjson.dumps(figures).decode(), flush=True)
    sock.close()


# -- the server (this process) ---------------------------------------------------------------


async def measure(vms: int, runs: int) -> dict[str, Any]:
    from xod import runtime

    sim, info = start_simulator(vms)
    try:
        with tempfile.TemporaryDirectory(prefix="xod-bench-") as state_dir:
            app = await start_xod(Path(state_dir))
            try:
                sync = app.pools.add(
                    "bench", info["master_url"], info["username"], info["password"]
                )
                async with asyncio.timeout(300):  # the cold sync
                    await sync.wait_synced()
                return await _runs(app, runs, runtime.release_memory)
            finally:
                await app.stop()
    finally:
        sim.terminate()
        sim.wait()


async def _runs(app: Any, runs: int, release_memory: Any) -> dict[str, Any]:
    reader = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", str(app.port),
        cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert reader.stdin is not None and reader.stdout is not None
    try:
        async with asyncio.timeout(30):  # the client signed in
            await reader.stdout.readline()
        await asyncio.sleep(1.0)  # the sign-in's notifications drained
        gc.collect()
        release_memory()
        rss_before = rss_bytes()
        results = []
        for _ in range(runs):
            cpu = time.process_time()
            reader.stdin.write(b"go\n")
            async with asyncio.timeout(120):  # one listing, read to its last byte
                line = await reader.stdout.readline()
            figures = orjson.loads(line)
            figures["server_cpu_ms"] = round((time.process_time() - cpu) * 1000, 1)
            results.append(figures)
            await asyncio.sleep(0.5)
        gc.collect()
        release_memory()
        rss_after = rss_bytes()
        reader.stdin.close()
    finally:
        if reader.returncode is None:
            reader.terminate()
        await reader.wait()
    median = {key: statistics.median(run[key] for run in results) for key in results[0]}
    return {
        "objects": len(app.services.objects),
        "runs": results,
        "median": median,
        "process_rss_before_first_listing_mib": round(rss_before / 2**20, 1),
        "process_rss_after_listings_mib": round(rss_after / 2**20, 1),
        "listing_rss_growth_mib": round((rss_after - rss_before) / 2**20, 1),
        "stored_json_mib": round(app.services.objects.encoded.nbytes / 2**20, 1),
        "target_total_ms": TARGET_TOTAL_MS,
        "met": median["total_ms"] <= TARGET_TOTAL_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client is not None:
        client(args.client)
        return
    result = {"vms": args.vms, **asyncio.run(measure(args.vms, args.runs))}
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
