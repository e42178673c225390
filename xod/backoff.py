"""Retry delays: exponential backoff with jitter, shared by every retry loop in xod.

Pure (no I/O, no sleeping, injectable randomness) and importable from any layer. Jitter spreads
clients that failed together (a pool master restarting, a daemon reconnecting thousands of
watchers) so they do not all come back in the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """The delays of one retry loop: `initial`, doubling up to `maximum`, each one scaled by a
    random factor in [1 - jitter, 1 + jitter]. `reset()` after a success starts over."""

    __slots__ = ("_current", "_random", "initial", "jitter", "maximum")

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        jitter: float = 0.25,
        random: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff needs 0 < initial ({initial}) <= maximum ({maximum})")
        if not 0 <= jitter < 1:
            raise ValueError(f"backoff jitter must be in [0, 1), not {jitter}")
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self._random = random
        self._current = initial

    def next(self) -> float:
        """The next delay to wait, in seconds (then the one after doubles)."""
        base = self._current
        self._current = min(base * 2, self.maximum)
        return base * (1 + self.jitter * (2 * self._random() - 1))

    def reset(self) -> None:
        self._current = self.initial
