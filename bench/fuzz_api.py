"""Fuzzing the JSON-RPC edge at volume: frames of every shape over real WebSockets (JSON and
msgpack) against xod connected to a simulated pool, every reply checked as
tests/api/test_fuzz_edge.py does, while another client calls `system.getServerVersion` in a loop.
Prints JSON: frames/s, the outcomes reached, the other client's latency, and every finding.

    PYTHONPATH=. .venv/bin/python bench/fuzz_api.py [--frames 100000] [--seeds 8000]

Hypothesis draws `--seeds` frames (tests/api/fuzz_support.py's strategies, ≈5 ms each); the rest
of the `--frames` are mutations of them (bytes flipped, inserted, cut, spliced; seeds batched
together), drawn from a seeded RNG. Frames go out in windows of `--window`, each followed by a
sentinel call whose answer says the window's replies are in. xod runs in a thread of this
process: the figure includes the client's cost.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api.fuzz_support import FuzzClient, Latency, frames, fuzz_target


def draw_seeds(count: int, as_msgpack: bool, ids: list[str]) -> list[bytes | str]:
    drawn: list[bytes | str] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(frames(as_msgpack, ids))
    def collect(frame: bytes | str) -> None:
        drawn.append(frame)

    collect()
    return drawn


def mutate(seed: bytes | str, seeds: list[bytes | str], rng: random.Random) -> bytes | str:
    data = seed.encode() if isinstance(seed, str) else seed
    operation = rng.randrange(6)
    at = rng.randrange(len(data) + 1)
    if operation == 0 and data:  # flip a byte
        at = min(at, len(data) - 1)
        data = data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]
    elif operation == 1:  # insert random bytes
        data = data[:at] + rng.randbytes(rng.randrange(1, 5)) + data[at:]
    elif operation == 2:  # cut a slice
        data = data[:at] + data[at + rng.randrange(1, 8) :]
    elif operation == 3:  # truncate
        data = data[:at]
    elif operation == 4:  # splice with another seed
        other = rng.choice(seeds)
        other = other.encode() if isinstance(other, str) else other
        data = data[:at] + other[rng.randrange(len(other) + 1) :]
    else:  # a batch of seeds (JSON text only: msgpack has no textual concatenation)
        if isinstance(seed, str):
            parts = [s for s in rng.sample(seeds, min(3, len(seeds))) if isinstance(s, str)]
            return "[" + ",".join([seed, *parts]) + "]"
    if isinstance(seed, str):
        try:
            return data.decode()
        except UnicodeDecodeError:
            return data  # sent as a binary frame, which xod decodes as JSON too
    return data


def run_format(
    client: FuzzClient, seeds: list[bytes | str], total: int, window: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    findings: list[dict[str, Any]] = []
    sent = 0
    started = time.perf_counter()
    pending = list(seeds)
    while sent < total:
        batch = pending[:window] or [mutate(rng.choice(seeds), seeds, rng) for _ in range(window)]
        del pending[:window]
        batch = batch[: total - sent]
        try:
            client.send_frames(batch)
        except AssertionError as finding:
            findings.append({"reply": str(finding)[:500], "frames": [repr(f)[:300] for f in batch]})
            if len(findings) >= 20:
                break
        sent += len(batch)
    outcomes = dict(client.outcomes)
    elapsed = time.perf_counter() - started
    return {
        "frames": sent,
        "seconds": round(elapsed, 1),
        "frames_per_s": round(sent / elapsed),
        "replies_by_outcome": {str(k): v for k, v in sorted(outcomes.items(), key=str)},
        "findings": findings,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=100_000, help="in all, both formats")
    parser.add_argument("--seeds", type=int, default=8000, help="drawn by hypothesis, in all")
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    # xod's thread (the simulator) uses `random` while hypothesis draws: not a strategy's doing.
    warnings.filterwarnings("ignore", module="hypothesis")
    report: dict[str, Any] = {"frames_requested": args.frames, "hypothesis_seeds": args.seeds}
    with fuzz_target() as target, Latency(target.url) as other_client:
        for as_msgpack in (False, True):
            name = "msgpack" if as_msgpack else "json"
            drawing = time.perf_counter()
            seeds = draw_seeds(args.seeds // 2, as_msgpack, target.object_ids)
            report[f"{name}_seed_drawing_seconds"] = round(time.perf_counter() - drawing, 1)
            client = target.clients[as_msgpack]
            report[name] = run_format(client, seeds, args.frames // 2, args.window, args.seed)
        problems = target.problems_logged()
        refusals = target.xapi_refusals()
    report["problems_logged"] = problems[:20]
    report["problems_logged_count"] = len(problems)
    report["unmapped_xapi_refusals"] = sorted(set(refusals))[:20]
    report["other_client"] = {
        "calls": other_client.calls,
        "p50_ms": round(other_client.percentile(0.5) * 1000, 2),
        "p99_ms": round(other_client.percentile(0.99) * 1000, 2),
        "max_ms": round(other_client.slowest * 1000, 2),
        "error": None if other_client.error is None else repr(other_client.error),
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
