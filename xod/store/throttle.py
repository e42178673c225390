"""Sign-in throttling: exponential backoff per identity and per client address.

Pure and in-memory (no I/O, injectable clock). An identity (email/username) gets a delay from
its first failure, like XO's 2 s `throttlingDelay`, doubling on each further failure; an
address gets a few free failures first (several users may share a NAT). Memory is bounded:
the least recently failed keys are forgotten first, and quiet keys expire.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    allowed: bool
    retry_after: float  # seconds until an attempt would be allowed (0 when allowed)


@dataclass(slots=True)
class _Failures:
    count: int
    last: float


class _BackoffTable:
    def __init__(
        self, base: float, maximum: float, free: int, capacity: int, forget_after: float
    ) -> None:
        self.base = base
        self.maximum = maximum
        self.free = free
        self.capacity = capacity
        self.forget_after = forget_after
        self.entries: OrderedDict[str, _Failures] = OrderedDict()

    def delay(self, failures: int) -> float:
        penalized = failures - self.free
        if penalized <= 0:
            return 0.0
        return min(self.base * 2 ** min(penalized - 1, 62), self.maximum)

    def retry_after(self, key: str, now: float) -> float:
        entry = self.entries.get(key)
        if entry is None:
            return 0.0
        if now - entry.last >= self.forget_after:
            del self.entries[key]
            return 0.0
        return max(0.0, entry.last + self.delay(entry.count) - now)

    def fail(self, key: str, now: float) -> None:
        entry = self.entries.pop(key, None)
        if entry is None or now - entry.last >= self.forget_after:
            entry = _Failures(0, now)
        entry.count += 1
        entry.last = now
        self.entries[key] = entry
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    def reset(self, key: str) -> None:
        self.entries.pop(key, None)


class SignInThrottle:
    def __init__(
        self,
        *,
        identity_base_delay: float = 2.0,
        address_base_delay: float = 1.0,
        address_free_failures: int = 5,
        max_delay: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A key with no failure for twice the longest delay starts afresh.
        forget_after = 2 * max_delay
        self._identities = _BackoffTable(
            identity_base_delay, max_delay, 0, max_entries, forget_after
        )
        self._addresses = _BackoffTable(
            address_base_delay, max_delay, address_free_failures, max_entries, forget_after
        )
        self._clock = clock

    def check(self, identity: str | None, address: str | None) -> ThrottleDecision:
        """Whether a sign-in attempt may be tried now (call before verifying credentials)."""
        now = self._clock()
        wait = 0.0
        if identity:
            wait = self._identities.retry_after(_normalize(identity), now)
        if address:
            wait = max(wait, self._addresses.retry_after(address, now))
        return ThrottleDecision(wait <= 0.0, wait)

    def failure(self, identity: str | None, address: str | None) -> None:
        now = self._clock()
        if identity:
            self._identities.fail(_normalize(identity), now)
        if address:
            self._addresses.fail(address, now)

    def success(self, identity: str | None, address: str | None) -> None:
        """A successful sign-in clears the identity; the address keeps its record until it
        expires, so one valid account cannot launder guesses against others."""
        if identity:
            self._identities.reset(_normalize(identity))

    @property
    def tracked(self) -> int:
        return len(self._identities.entries) + len(self._addresses.entries)


def _normalize(identity: str) -> str:
    return identity.strip().casefold()
