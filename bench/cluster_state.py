"""The shared state's cost (docs/cluster.md): the store operations of a token sign-in and of an
admin's writes, on a single instance's SQLite file and on a cluster member's mirror of the
NATS bucket (a real nats-server on loopback, JetStream on disk). Prints its figures as JSON.

    PYTHONPATH=. .venv/bin/python bench/cluster_state.py [--rounds 500]

Reads are the mirror's (local SQLite, as on a single instance); a write waits for one
JetStream acknowledgement, blocking its caller: `record_use` runs once per token sign-in.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api.harness import cheap_hasher
from tests.cluster.nats_server import NatsServer
from xod.cluster.shared_state import SharedState
from xod.store import Store


def timed(rounds: int, operation: Callable[[int], Any]) -> dict[str, float]:
    """Microseconds per call: median, 99th percentile, and calls per second."""
    samples = []
    started = time.perf_counter()
    for index in range(rounds):
        before = time.perf_counter()
        operation(index)
        samples.append(time.perf_counter() - before)
    total = time.perf_counter() - started
    samples.sort()
    return {
        "p50_us": round(statistics.median(samples) * 1e6, 1),
        "p99_us": round(samples[int(len(samples) * 0.99) - 1] * 1e6, 1),
        "per_second": round(rounds / total),
    }


def measure(store: Store, rounds: int) -> dict[str, Any]:
    admin = store.users.create("bench-admin@bench.test", "pw", "admin")
    token = store.tokens.create(admin.id)
    return {
        "tokens.lookup": timed(rounds, lambda i: store.tokens.lookup(token.token)),
        "users.get": timed(rounds, lambda i: store.users.get(admin.id)),
        "tokens.record_use": timed(
            rounds, lambda i: store.tokens.record_use(token.record.id, f"192.0.2.{i % 250}")
        ),
        "tokens.create": timed(rounds, lambda i: store.tokens.create(admin.id)),
        "servers.add": timed(
            rounds, lambda i: store.servers.add(f"10.1.{i // 250}.{i % 250}", "root", "pw")
        ),
    }


async def main(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="xod-bench-") as tmp:
        single = Store.open(Path(tmp) / "single", cheap_hasher())
        try:
            # Each call blocks this (the daemon's) thread, as the API's synchronous calls do.
            alone = measure(single, rounds)
        finally:
            single.close()
        with NatsServer(Path(tmp) / "nats") as nats:
            shared = SharedState([nats.url], "bench")
            store = await shared.open_store(Path(tmp) / "member", cheap_hasher())
            try:
                clustered = await asyncio.to_thread(measure, store, rounds)
            finally:
                store.close()
                await shared.close()
    return {"rounds": rounds, "single_instance": alone, "cluster_member": clustered}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=500)
    arguments = parser.parse_args()
    import orjson

    print(orjson.dumps(asyncio.run(main(arguments.rounds)), option=orjson.OPT_INDENT_2).decode())
