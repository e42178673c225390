"""REST listing benchmark: `/rest/v0/vms?fields=name_label,power_state&ndjson` over a 10k-VM
pool, timed by the `curl` binary (a separate process, as a user's client): time to the first
byte and to the last. Also the same listing as a JSON array, hrefs only, and `fields=*`.
Prints its figures as JSON (each figure: every run, and the median).

    PYTHONPATH=. .venv/bin/python bench/rest_list.py [--vms 10000] [--runs 7]

Targets (issue #13): ndjson first byte <= 20 ms, total <= 150 ms.
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

from tests.api.harness import connect, running_xod
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator

LISTINGS = {
    "ndjson_name_label_power_state": "/rest/v0/vms?fields=name_label,power_state&ndjson",
    "json_name_label_power_state": "/rest/v0/vms?fields=name_label,power_state",
    "hrefs": "/rest/v0/vms",
    "ndjson_all_fields": "/rest/v0/vms?fields=*&ndjson",
}


async def curl_timing(url: str, token: str) -> dict[str, float]:
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-b",
        f"authenticationToken={token}",
        "-w",
        "%{http_code} %{time_starttransfer} %{time_total} %{size_download}",
        url,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    status, first, total, size = out.decode().split()
    assert status == "200", status
    return {
        "ttfb_ms": round(float(first) * 1000, 1),
        "total_ms": round(float(total) * 1000, 1),
        "bytes": int(size),
    }


def runs_and_median(runs: list[dict[str, float]]) -> dict:
    return {
        "median": {k: statistics.median(r[k] for r in runs) for k in runs[0]},
        "runs": runs,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    results: dict = {
        "vms": args.vms,
        "figures": "curl's time_starttransfer (ttfb_ms) and time_total (total_ms) per request,"
        " token cookie auth included; `median` over `runs`",
    }
    async with Simulator(SimConfig(hosts=args.hosts, vms=args.vms, seed=1)) as sim:
        with tempfile.TemporaryDirectory() as state:
            async with running_xod(Path(state)) as app, connect(app) as admin:
                await admin.sign_in()
                t0 = time.perf_counter()
                server_id = await admin.call(
                    "server.add",
                    {"host": sim.master_url, "username": "root", "password": "password"},
                )
                await app.pools.sync_of(server_id).wait_synced()
                results["sync_s"] = round(time.perf_counter() - t0, 2)
                results["vms_listed"] = len(app.objects.by_type("VM"))
                token = await admin.call("token.create")
                for name, path in LISTINGS.items():
                    await curl_timing(app.url + path, token)  # warm-up
                    runs = [await curl_timing(app.url + path, token) for _ in range(args.runs)]
                    results[name] = runs_and_median(runs)
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    asyncio.run(main())
