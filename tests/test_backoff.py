from __future__ import annotations

import pytest

from xod.backoff import Backoff


def test_delays_double_up_to_the_maximum_and_reset_starts_over() -> None:
    backoff = Backoff(0.5, 3.0, random=lambda: 0.5)  # 0.5: the jitter's middle, no change
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_jitter_spreads_each_delay_within_its_bounds() -> None:
    low = Backoff(1.0, 8.0, jitter=0.25, random=lambda: 0.0)
    high = Backoff(1.0, 8.0, jitter=0.25, random=lambda: 0.999999)
    assert [low.next() for _ in range(4)] == [0.75, 1.5, 3.0, 6.0]
    assert [round(high.next(), 3) for _ in range(4)] == [1.25, 2.5, 5.0, 10.0]
    spread = {Backoff(1.0, 1.0).next() for _ in range(50)}
    assert len(spread) > 40 and all(0.75 <= delay <= 1.25 for delay in spread)


@pytest.mark.parametrize(
    ("initial", "maximum", "jitter"), [(0, 1, 0.1), (2, 1, 0.1), (1, 2, 1.0), (1, 2, -0.1)]
)
def test_nonsense_settings_are_refused(initial: float, maximum: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial, maximum, jitter=jitter)
