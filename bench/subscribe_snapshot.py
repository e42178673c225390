"""The first `xod.subscribe` of a scope on a big pool (issue #18). Prints one JSON object.

A simulated pool of 10k VMs changing 200 times a second (`python -m xod.sim --churn`, its own
process), xod and one WebSocket client in this process. Each round subscribes with the
dashboard's VM scope (`xod/web/app.js`: `type:/^VM$/` and its table's fields), times the
`xod.subscribe` call until the last snapshot frame arrived, then unsubscribes: the scope has no
subscriber left and is dropped, so every round builds it anew, as the first dashboard does.

- `subscribe_to_last_frame_ms`: median and min over the rounds, client side.
- `load_ms`: building the scope alone (`Scope.load_store`), in process, on the same cache;
  `full_scan_load_ms` is the scan over every object that a filter pinning no type costs (what
  every scope cost before `candidate_types`).
- `snapshot_encode_ms`: encoding the snapshot's frames (`StartFrames`), in process.

`--full-scan` makes xod scan every object for every scope: the figures before the change.

    PYTHONPATH=. .venv/bin/python bench/subscribe_snapshot.py [--vms 10000] [--rate 200]
        [--rounds 7] [--full-scan]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dashboard import start_sim  # noqa: E402

VM_SCOPE = {
    "filter": "type:/^VM$/",
    "fields": ["name_label", "power_state", "$container", "$pool", "CPUs.number", "memory.size"],
}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def in_process(store: Any) -> dict[str, Any]:
    """The scope's build and its snapshot's encoding, timed apart from the socket."""
    from xod.api.subscriptions import Delta, Scope, scope_key
    from xod.server.changes import StartFrames
    from xod.server.frames import JSON

    key = scope_key(VM_SCOPE["filter"], VM_SCOPE["fields"])
    loads, full, encodes = [], [], []
    for _ in range(5):
        scope = Scope(key, VM_SCOPE["filter"], VM_SCOPE["fields"])
        started = time.perf_counter()
        scope.load_store(store)
        loads.append(time.perf_counter() - started)
        started = time.perf_counter()
        scope.load(store.objects)
        full.append(time.perf_counter() - started)
        started = time.perf_counter()
        frames = StartFrames(JSON, Delta(store.revision, scope.snapshot({}), []))
        for _frame in frames.frames(b"0" * 32):
            pass
        encodes.append(time.perf_counter() - started)
    return {
        "load_ms": _ms(statistics.median(loads)),
        "full_scan_load_ms": _ms(statistics.median(full)),
        "snapshot_encode_ms": _ms(statistics.median(encodes)),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.api.harness import connect, running_xod
    from tests.api.live_support import is_changes, next_message
    from xod.api.subscriptions import Scope

    if args.full_scan:
        Scope.load_store = lambda scope, store: scope.load(store.objects)  # type: ignore[method-assign]
    sim, master_url = start_sim(args.vms, args.rate)
    try:
        with tempfile.TemporaryDirectory() as state_dir:
            async with running_xod(Path(state_dir)) as app, connect(app) as client:
                await client.sign_in()
                await client.call("xod.setAllNotifications", {"enabled": False})
                server_id = await client.call(
                    "server.add", {"host": master_url, "username": "root", "password": "password"}
                )
                deadline = time.monotonic() + 120
                while not app.pools.status(server_id).synced:
                    assert time.monotonic() < deadline, "the pool did not sync in 120 s"
                    await asyncio.sleep(0.1)
                store = app.objects
                vms = len(store.by_type("VM"))
                rounds = []
                for _ in range(args.rounds):
                    assert not app.fanout.scopes, "a scope outlived its subscribers"
                    started = time.perf_counter()
                    result = await client.call("xod.subscribe", VM_SCOPE)
                    subscription = result["subscription"]
                    received = 0
                    while received < vms:
                        message = await next_message(client, is_changes(subscription), 30.0)
                        assert message["params"]["revision"] == result["revision"]
                        received += len(message["params"]["enter"])
                    rounds.append(time.perf_counter() - started)
                    await client.call("xod.unsubscribe", {"subscription": subscription})
                return {
                    "vms": vms,
                    "objects": len(store),
                    "changes_per_s": args.rate,
                    "full_scan": args.full_scan,
                    "subscribe_to_last_frame_ms": {
                        "median": _ms(statistics.median(rounds)),
                        "min": _ms(min(rounds)),
                    },
                    **in_process(store),
                }
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0, help="pool changes per second")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--full-scan", action="store_true", help="the scan before the change")
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args))).decode())


if __name__ == "__main__":
    main()
