"""JSON-RPC API benchmark: xo.getAllObjects over a big pool (plain and NDJSON), and many small
concurrent calls. Prints its figures as JSON.

    PYTHONPATH=. .venv/bin/python bench/api_jsonrpc.py [--vms 10000] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api.harness import connect, running_xod
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator


async def raw_call_timing(host: str, port: int, token: str, message: dict) -> dict:
    """One call on a hand-rolled WebSocket, to see when the first byte of its reply arrives.

    Frames before the reply (notifications, pings) are read and skipped: the reply is the
    text message whose `id` is the call's."""
    reader, writer = await asyncio.open_connection(host, port, limit=2**24)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /api/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await reader.readuntil(b"\r\n\r\n")

    def frame(payload: bytes) -> bytes:
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x81]) + (
            bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        )
        return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    async def read_message() -> tuple[int, bytes, float]:
        """The next whole message: its opcode, payload, and when its first byte arrived."""
        chunks = []
        opcode = None
        first_byte = None
        while True:
            head = await reader.readexactly(2)
            if first_byte is None:
                first_byte = time.perf_counter()
            opcode = opcode or head[0] & 0x0F  # continuation frames carry opcode 0
            length = head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await reader.readexactly(8), "big")
            chunks.append(await reader.readexactly(length))
            if head[0] & 0x80:
                return opcode, b"".join(chunks), first_byte

    async def reply_to(request: dict) -> tuple[bytes, float]:
        while True:
            opcode, payload, first_byte = await read_message()
            if opcode != 0x1:  # pings and binary frames are not the reply
                continue
            decoded = orjson.loads(payload)
            if isinstance(decoded, dict) and decoded.get("id") == request["id"]:
                return payload, first_byte

    sign_in = {"id": 1, "jsonrpc": "2.0", "method": "session.signIn", "params": {"token": token}}
    writer.write(frame(orjson.dumps(sign_in)))
    await reply_to(sign_in)
    start = time.perf_counter()
    writer.write(frame(orjson.dumps(message)))
    payload, first_byte = await reply_to(message)
    total = time.perf_counter() - start
    writer.close()
    return {
        "ttfb_ms": round((first_byte - start) * 1000, 1),
        "total_ms": round(total * 1000, 1),
        "bytes": len(payload),
    }


def runs_and_median(runs: list[dict]) -> dict:
    """Every run in order, and the median of each figure over them (not a best-of)."""
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    return {"runs": runs, "median": median}


async def small_calls(app, concurrency: int, calls: int, connections: int) -> dict:
    latencies: list[float] = []
    per_connection = concurrency // connections

    clients = []
    contexts = []
    for _ in range(connections):
        context = connect(app)
        client = await context.__aenter__()
        await client.sign_in()
        contexts.append(context)
        clients.append(client)
    # Each connection carries `per_connection` concurrent calls: one reader per connection
    # demultiplexes the replies.
    from tests.api.harness import Client

    async def connection_load(client: Client) -> None:
        pending: dict[int, float] = {}
        next_id = 0
        total = calls // connections
        sent = 0
        done = 0
        while sent < min(per_connection, total):
            pending[next_id] = time.perf_counter()
            await client.send_raw(
                orjson.dumps({"id": next_id, "jsonrpc": "2.0", "method": "session.getUser"})
            )
            next_id += 1
            sent += 1
        while done < total:
            reply = await client.recv()
            if not isinstance(reply, dict) or reply.get("id") not in pending:
                continue  # a notification, not one of our replies
            latencies.append(time.perf_counter() - pending.pop(reply["id"]))
            done += 1
            if sent < total:
                pending[next_id] = time.perf_counter()
                await client.send_raw(
                    orjson.dumps({"id": next_id, "jsonrpc": "2.0", "method": "session.getUser"})
                )
                next_id += 1
                sent += 1

    start = time.perf_counter()
    await asyncio.gather(*(connection_load(c) for c in clients))
    elapsed = time.perf_counter() - start
    for context in contexts:
        await context.__aexit__(None, None, None)
    latencies.sort()
    return {
        "concurrency": per_connection * connections,
        "connections": connections,
        "calls": len(latencies),
        "calls_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each xo.getAllObjects")
    args = parser.parse_args()
    results: dict = {
        "vms": args.vms,
        "figures": (
            "getAllObjects_*: `runs` lists every run in order, `median` is each figure's median"
            " over them; plain: ttfb_ms/total_ms from sending the call to the first/last byte"
            " of its reply (matched by id); ndjson: from calling for the URL to the first/last"
            " byte of the download; small_calls: one run of `calls` session.getUser, p50/p99 of"
            " their latencies"
        ),
    }
    t0 = time.perf_counter()
    async with Simulator(SimConfig(hosts=args.hosts, vms=args.vms, seed=1)) as sim:
        results["sim_build_s"] = round(time.perf_counter() - t0, 2)
        with tempfile.TemporaryDirectory() as state:
            async with running_xod(Path(state)) as app, connect(app) as admin:
                await admin.sign_in()
                t1 = time.perf_counter()
                server_id = await admin.call(
                    "server.add",
                    {"host": sim.master_url, "username": "root", "password": "password"},
                )
                await app.pools.sync_of(server_id).wait_synced()
                results["sync_s"] = round(time.perf_counter() - t1, 2)
                results["objects"] = len(app.objects)
                token = await admin.call("token.create")
                plain = [
                    await raw_call_timing(
                        app.config.host,
                        app.port,
                        token,
                        {"id": 2, "jsonrpc": "2.0", "method": "xo.getAllObjects"},
                    )
                    for _ in range(args.runs)
                ]
                results["getAllObjects_plain"] = runs_and_median(plain)
                ndjson = []
                async with aiohttp.ClientSession() as http:
                    for _ in range(args.runs):
                        start = time.perf_counter()
                        url = (await admin.call("xo.getAllObjects", {"ndjson": True}))["$getFrom"]
                        size = 0
                        first = None
                        async with http.get(app.url + url) as response:
                            async for chunk in response.content.iter_any():
                                if first is None:
                                    first = time.perf_counter() - start
                                size += len(chunk)
                        total = time.perf_counter() - start
                        ndjson.append(
                            {
                                "ttfb_ms": round(first * 1000, 1),
                                "total_ms": round(total * 1000, 1),
                                "bytes": size,
                            }
                        )
                results["getAllObjects_ndjson"] = runs_and_median(ndjson)
                results["small_calls"] = await small_calls(
                    app, args.concurrency, args.calls, args.connections
                )
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    asyncio.run(main())
