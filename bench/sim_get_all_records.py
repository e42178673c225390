"""Benchmark: how fast the simulator serves a full initial sync (`<class>.get_all_records` of every
class, in parallel over JSON-RPC, as XO's client does on connect).

The simulator runs in this process; the client runs in a separate process (one connection per
class, all in parallel) so that client and server do not share a GIL.

    PYTHONPATH=. .venv/bin/python bench/sim_get_all_records.py [--vms 1000 --vms 10000]

Prints one JSON object per pool size:
{"vms", "objects", "build_s", "serve_s", "mb", "classes": {cls: {"s", "mb", "objects"}}}.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import aiohttp
import orjson

from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator


async def _json_rpc(http: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    doc = {"jsonrpc": "2.0", "id": 0, "method": method, "params": list(params)}
    async with http.post(url + "/jsonrpc", data=orjson.dumps(doc)) as response:
        answer = orjson.loads(await response.read())
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["result"]


async def _fetch(http: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, bytes]:
    started = time.perf_counter()
    async with http.post(url + "/jsonrpc", data=body) as response:
        payload = await response.read()
    return time.perf_counter() - started, payload


async def client(url: str, username: str, password: str) -> dict[str, Any]:
    """The measuring side: every class's get_all_records at once, one connection each."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        session = await _json_rpc(http, url, "session.login_with_password", username, password)
        methods = await _json_rpc(http, url, "system.listMethods")
        classes = sorted(
            m.removesuffix(".get_all_records") for m in methods if m.endswith(".get_all_records")
        )
        bodies = [
            orjson.dumps(
                {"jsonrpc": "2.0", "id": 0, "method": f"{cls}.get_all_records", "params": [session]}
            )
            for cls in classes
        ]
        started = time.perf_counter()
        answers = await asyncio.gather(*(_fetch(http, url, body) for body in bodies))
        serve_s = time.perf_counter() - started

    per_class: dict[str, dict[str, Any]] = {}
    for cls, (seconds, payload) in zip(classes, answers, strict=True):
        answer = orjson.loads(payload)
        if "error" in answer:
            raise RuntimeError(f"{cls}.get_all_records: {answer['error']}")
        per_class[cls] = {
            "s": round(seconds, 4),
            "mb": round(len(payload) / 1e6, 3),
            "objects": len(answer["result"]),
        }
    return {
        "objects": sum(c["objects"] for c in per_class.values()),
        "serve_s": round(serve_s, 4),
        "mb": round(sum(len(p) for _s, p in answers) / 1e6, 3),
        "classes": per_class,
    }


async def measure(vms: int) -> dict[str, Any]:
    started = time.perf_counter()
    sim = Simulator(SimConfig(hosts=3, vms=vms, seed=1))
    build_s = time.perf_counter() - started
    async with sim:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client", sim.master_url,
            sim.pool.config.username, sim.pool.config.password,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"client failed with status {process.returncode}")
    measured = orjson.loads(out)
    return {
        "vms": vms,
        "objects": measured.pop("objects"),
        "build_s": round(build_s, 3),
        **measured,
    }


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        print(orjson.dumps(asyncio.run(client(*sys.argv[2:]))).decode(), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, action="append", help="pool size (repeatable)")
    args = parser.parse_args()
    for vms in args.vms or [1000, 10_000]:
        print(orjson.dumps(asyncio.run(measure(vms))).decode(), flush=True)


if __name__ == "__main__":
    main()
