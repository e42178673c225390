"""Streamed transfers through xod (issue #14): a sparse VDI imported and exported through xod's
one-shot URLs against the same transfers straight from the simulator. Prints one JSON object.

Three processes on loopback, as bench/memory_attack.py runs them: the simulator, xod (`python -m
xod serve`) and this script. A `--size` GiB VDI is created on the pool; its content, one MiB in
`--stride` non-zero (≥ 1 GiB of data at 4 GiB), is uploaded raw, then downloaded raw:

- straight to/from the simulator's `/import_raw_vdi` and `/export_raw_vdi` (the baseline),
- through xod (`vdi.importContent` / `vdi.exportContent`): throughput ratio to the baseline
  (target ≥ 0.8; the median of `--rounds` pairs) and xod's RSS growth over its level before
  the transfer (target ≤ 32 MiB); the CPU seconds per GiB of the simulator, xod and this
  client tell where the time went (on 2 cores the three compete for them),
- through xod by a client reading at `--slow-rate` MiB/s for `--slow-seconds`: xod's RSS must
  stay flat (the master is held back, not buffered).

    PYTHONPATH=. .venv/bin/python bench/transfer.py [--size 4] [--stride 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory_attack import ADMIN_EMAIL, ADMIN_PASSWORD, Processes, Rpc, rss_bytes  # noqa: E402

MiB = 1024 * 1024
GiB = 1024 * MiB
CHUNK = MiB


def image_chunks(size: int, stride: int) -> AsyncIterator[bytes]:
    """The image: chunk i non-zero (a pattern of i) when i % stride == 0, zeros otherwise."""
    zero = bytes(CHUNK)

    async def chunks() -> AsyncIterator[bytes]:
        for index in range(size // CHUNK):
            yield (index.to_bytes(8, "big") * (CHUNK // 8)) if index % stride == 0 else zero

    return chunks()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class TransferMeter:
    """xod's RSS every 50 ms while a transfer runs (the peak over the level before it), and the
    CPU each of the three processes spent on it."""

    def __init__(self, pid: int, sim_pid: int) -> None:
        self.pid = pid
        self.sim_pid = sim_pid
        self.samples: list[int] = []

    def cpu(self) -> tuple[float, float, float]:
        return cpu_seconds(self.sim_pid), cpu_seconds(self.pid), own_cpu_seconds()

    async def sample(self, done: asyncio.Event) -> None:
        while not done.is_set():
            self.samples.append(rss_bytes(self.pid))
            await asyncio.sleep(0.05)

    async def measure(self, work: Callable[[], Awaitable[int]]) -> dict[str, Any]:
        before = rss_bytes(self.pid)
        cpu_before = self.cpu()
        done = asyncio.Event()
        sampler = asyncio.ensure_future(self.sample(done))
        started = time.monotonic()
        moved = await work()
        elapsed = time.monotonic() - started
        cpu_after = self.cpu()
        done.set()
        await sampler
        sim_cpu, xod_cpu, client_cpu = (
            round((after - before) / (moved / GiB), 2)
            for before, after in zip(cpu_before, cpu_after, strict=True)
        )
        return {
            "seconds": round(elapsed, 2),
            "MiB_per_s": round(moved / MiB / elapsed, 1),
            "rss_before_MiB": round(before / MiB, 1),
            "rss_growth_MiB": round((max(self.samples, default=before) - before) / MiB, 1),
            "cpu_s_per_GiB": {"simulator": sim_cpu, "xod": xod_cpu, "client": client_cpu},
        }


async def sim_session(http: aiohttp.ClientSession, sim_url: str) -> str:
    return str(await sim_call(http, sim_url, "", "session.login_with_password", "root", "password"))


async def sim_call(
    http: aiohttp.ClientSession, sim_url: str, session: str, method: str, *args: Any
) -> Any:
    params = list(args) if method.startswith("session.") else [session, *args]
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with http.post(f"{sim_url}/jsonrpc", json=request) as response:
        reply = await response.json(content_type=None)
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


async def download(http: aiohttp.ClientSession, url: str, rate: float | None = None) -> int:
    """Read a whole body (at `rate` MiB/s when given, until `rate`'s budget is spent)."""
    received = 0
    started = time.monotonic()
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        async for chunk in response.content.iter_chunked(CHUNK):
            received += len(chunk)
            if rate is not None:
                ahead = received / (rate * MiB) - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    return received


async def upload(http: aiohttp.ClientSession, method: str, url: str, size: int, stride: int) -> int:
    headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
    async with http.request(method, url, data=image_chunks(size, stride), headers=headers) as r:
        assert r.status == 200, await r.text()
        await r.read()
    return size


async def run(args: argparse.Namespace) -> dict[str, Any]:
    size = args.size * GiB
    work = Path(tempfile.mkdtemp(prefix="xod-bench-transfer-"))
    processes = Processes(argparse.Namespace(vms=2, xod_root=ROOT), work)
    try:
        sim_url, xod_url = processes.sim_url(), processes.xod_url()
        host_port = xod_url.removeprefix("http://")
        timeout = aiohttp.ClientTimeout(total=None, sock_read=300)

        async def rpc(method: str, params: dict[str, Any]) -> Any:
            """One call on a connection of its own: none stays open unread during a transfer
            (xod would close it for not answering its pings)."""
            async with websockets.connect(f"ws://{host_port}/api/", max_size=2**30) as ws:
                client = Rpc(ws)
                credentials = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
                await client.call("session.signIn", credentials)
                return await client.call(method, params)

        async with aiohttp.ClientSession(timeout=timeout) as http:
            credentials = {"host": sim_url, "username": "root", "password": "password"}
            await rpc("server.add", credentials)
            session = await sim_session(http, sim_url)
            pool = next(iter(await sim_call(http, sim_url, session, "pool.get_all_records")))
            sr = await sim_call(http, sim_url, session, "pool.get_default_SR", pool)
            record = {
                "name_label": "bench", "name_description": "", "SR": sr,
                "virtual_size": str(size), "type": "user", "sharable": False,
                "read_only": False, "other_config": {},
            }  # fmt: skip
            vdi = await sim_call(http, sim_url, session, "VDI.create", record)
            uuid = await sim_call(http, sim_url, session, "VDI.get_uuid", vdi)
            async with asyncio.timeout(60):  # the new VDI reaches xod's cache
                while not await rpc("xo.getAllObjects", {"filter": {"id": uuid}}):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            sampler = TransferMeter(processes.xod.pid, processes.sim.pid)
            direct = f"{sim_url}/{{}}?vdi={vdi}&format=raw&session_id={session}"

            async def via_xod(method: str, key: str) -> str:
                result = await rpc(method, {"id": uuid, "format": "raw"})
                return f"{xod_url}{result[key]}"

            results: dict[str, Any] = {
                "size_GiB": args.size,
                "nonzero_GiB": args.size / args.stride,
            }

            # Rounds of each transfer straight and through xod, in turns: the ratio of each
            # pair, and their median (one run alone swings ±20 % with the machine's mood).
            async def pair(kind: str) -> dict[str, Any]:
                if kind == "import":
                    put = direct.format("import_raw_vdi")
                    straight = await sampler.measure(
                        partial(upload, http, "PUT", put, size, args.stride)
                    )
                    url = await via_xod("vdi.importContent", "$sendTo")
                    post = partial(upload, http, "POST", url, size, args.stride)
                    via = await sampler.measure(post)
                else:
                    straight = await sampler.measure(
                        partial(download, http, direct.format("export_raw_vdi"))
                    )
                    url = await via_xod("vdi.exportContent", "$getFrom")
                    via = await sampler.measure(partial(download, http, url))
                ratio = round(via["MiB_per_s"] / straight["MiB_per_s"], 2)
                return {"direct": straight, "via_xod": via, "ratio": ratio}

            for kind in ("import", "export"):
                rounds = [await pair(kind) for _ in range(args.rounds)]
                ratios = [r["ratio"] for r in rounds]
                results[kind] = {
                    "throughput_ratio_median": statistics.median(ratios),
                    "throughput_ratios": ratios,
                    "rss_growth_MiB_max": max(r["via_xod"]["rss_growth_MiB"] for r in rounds),
                    "rounds": rounds,
                }
            get_url = await via_xod("vdi.exportContent", "$getFrom")
            slow = sampler.samples = []
            slow_run = asyncio.ensure_future(download(http, get_url, rate=args.slow_rate))
            await asyncio.sleep(1)
            start_rss = rss_bytes(processes.xod.pid)
            for _ in range(int(args.slow_seconds / 0.5)):
                slow.append(rss_bytes(processes.xod.pid))
                await asyncio.sleep(0.5)
            slow_run.cancel()
            results["slow_reader"] = {
                "rate_MiB_per_s": args.slow_rate,
                "seconds": args.slow_seconds,
                "rss_start_MiB": round(start_rss / MiB, 1),
                "rss_max_growth_MiB": round((max(slow) - start_rss) / MiB, 1),
                "rss_end_minus_start_MiB": round((slow[-1] - start_rss) / MiB, 1),
            }
            return results
    finally:
        processes.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4, help="VDI size in GiB (default 4)")
    parser.add_argument("--stride", type=int, default=4, help="one MiB in N non-zero (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="transfers of each kind (default 3)")
    parser.add_argument("--slow-rate", type=float, default=1.0, help="MiB/s of the slow reader")
    parser.add_argument("--slow-seconds", type=float, default=20.0)
    args = parser.parse_args()
    import orjson

    print(orjson.dumps(asyncio.run(run(args)), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
