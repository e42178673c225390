"""Cost of validating a call's params (xod/api/schema.py), per call, for typical XO calls.
Prints JSON: µs per validation, for params repeated call after call (what a dashboard sends) and
for params that differ on every call (object ids, passwords).

    PYTHONPATH=. .venv/bin/python bench/params_validation.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xod.api.methods import build_registry

# (method, params): what XO clients send most.
TYPICAL: list[tuple[str, dict[str, Any]]] = [
    ("xo.getAllObjects", {"filter": {"type": "VM", "power_state": "Running"}, "limit": 500}),
    ("xod.subscribe", {"filter": {"type": "VM"}, "fields": ["id", "name_label", "power_state"]}),
    ("vm.start", {"id": "0b9e3c2a-6d5f-4a8e-9c1b-2f4d6e8a0c1e"}),
    ("vm.set", {"id": "0b9e3c2a-6d5f-4a8e-9c1b-2f4d6e8a0c1e", "name_label": "web", "CPUs": 2}),
    ("session.signInWithPassword", {"email": "admin@example.test", "password": "secret"}),
    ("session.signInWithToken", {"token": "secret-token-value-0123456789abcdef"}),
]


def per_call_us(calls: int, distinct: bool) -> dict[str, float]:
    registry = build_registry()
    figures = {}
    for name, params in TYPICAL:
        validator = registry.get(name).validator
        encoded = orjson.dumps(params)
        # Decoded per call, as the edge does: validation never sees the same dict twice.
        frames = [
            orjson.loads(encoded.replace(b"secret", b"s%07d" % i) if distinct else encoded)
            for i in range(calls)
        ]
        if distinct and "id" in params:
            for i, frame in enumerate(frames):
                frame["id"] = f"{i:08d}-6d5f-4a8e-9c1b-2f4d6e8a0c1e"
        started = time.perf_counter()
        for frame in frames:
            assert not validator.validate(frame)
        figures[name] = round((time.perf_counter() - started) / calls * 1e6, 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls
    repeated, distinct = per_call_us(calls, False), per_call_us(calls, True)
    print(
        orjson.dumps(
            {
                "calls_per_method": calls,
                "us_per_validation_repeated_params": repeated,
                "us_per_validation_distinct_params": distinct,
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )


if __name__ == "__main__":
    main()
