"""Fuzzing the JSON-RPC edge over a real WebSocket: frames of every shape, in JSON and msgpack,
against xod connected to a simulated pool. Every reply is a valid JSON-RPC response with a
clear error, nothing fails inside xod (no traceback logged), and another client keeps being
answered promptly. bench/fuzz_api.py runs the same for ≥ 100k frames."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from tests.api.fuzz_support import FuzzTarget, Latency, frames, fuzz_target

FRAMES_PER_FORMAT = 1500
# How long the other client's `system.getServerVersion` may take at worst during the fuzz: a
# loaded 2-core machine, not the steady figure (bench/fuzz_api.py reports that).
SLOWEST_OTHER_CALL = 2.0


@pytest.fixture(scope="module")
def target() -> Iterator[FuzzTarget]:
    with fuzz_target() as running:
        yield running


@pytest.mark.timeout(600)
# xod's thread (the simulator) uses `random` while hypothesis draws: not the strategies' doing.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize("as_msgpack", [False, True], ids=["json", "msgpack"])
def test_fuzzed_frames_get_clear_answers(target: FuzzTarget, as_msgpack: bool) -> None:
    client = target.clients[as_msgpack]
    with Latency(target.url) as other_client:

        @settings(
            max_examples=FRAMES_PER_FORMAT,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(frames(as_msgpack, target.object_ids))
        def send(frame: bytes | str) -> None:
            client.send_frame(frame)

        send()
    # The fuzz reached every stage: decoding, the envelope, the registry, params, handlers.
    assert {-32700, -32600, -32601, 10, "result"} <= set(client.outcomes), client.outcomes
    assert other_client.error is None, other_client.error
    assert other_client.calls >= 10, "the other client was not answered during the fuzz"
    assert other_client.slowest < SLOWEST_OTHER_CALL, other_client.slowest
    assert target.problems_logged() == []
