"""Sign-in throttling that slows guessing without letting anyone lock an account out.

Pure and in-memory (no I/O, injectable clock). Three tables of failures, each with its own
exponential backoff (a delay from the last failure, doubling per further failure, capped):

* **(account, source)** — the main rule: a delay from the first failure (like XO's 2 s
  `throttlingDelay`), doubling up to `max_delay`. Failures from one address never delay the
  same account from another address, so nobody can lock the administrator out by guessing.
* **source** — one address guessing across many accounts: a few free failures (several users
  may share a NAT), then a delay for that address only.
* **account** — the ceiling across sources: many addresses guessing one account (a botnet)
  raise the account's delay, up to the small `account_max_delay`. It applies only to sources
  that already failed on that account: a source with a clean record (the owner at their usual
  address) always gets its attempt, so the ceiling slows guessing but cannot lock anyone out.

An attempt waits for the longest delay that applies to it. A source is an IP address; IPv6
addresses count per /64, the block a single host usually gets. Memory is bounded: the least
recently failed keys are forgotten first, and quiet keys expire.
"""

from __future__ import annotations

import ipaddress
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
        self.entries: OrderedDict[object, _Failures] = OrderedDict()

    def delay(self, failures: int) -> float:
        penalized = failures - self.free
        if penalized <= 0:
            return 0.0
        return min(self.base * 2.0 ** min(penalized - 1, 62), self.maximum)

    def live(self, key: object, now: float) -> _Failures | None:
        entry = self.entries.get(key)
        if entry is not None and now - entry.last >= self.forget_after:
            del self.entries[key]
            return None
        return entry

    def retry_after(self, key: object, now: float) -> float:
        entry = self.live(key, now)
        if entry is None:
            return 0.0
        return max(0.0, entry.last + self.delay(entry.count) - now)

    def fail(self, key: object, now: float) -> None:
        entry = self.entries.pop(key, None)
        if entry is None or now - entry.last >= self.forget_after:
            entry = _Failures(0, now)
        entry.count += 1
        entry.last = now
        self.entries[key] = entry
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    def reset(self, key: object) -> None:
        self.entries.pop(key, None)


class SignInThrottle:
    def __init__(
        self,
        *,
        identity_base_delay: float = 2.0,
        address_base_delay: float = 1.0,
        address_free_failures: int = 5,
        account_base_delay: float = 1.0,
        account_free_failures: int = 5,
        account_max_delay: float = 30.0,
        max_delay: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A key with no failure for twice the longest delay starts afresh.
        forget_after = 2 * max_delay
        self._pairs = _BackoffTable(identity_base_delay, max_delay, 0, max_entries, forget_after)
        self._addresses = _BackoffTable(
            address_base_delay, max_delay, address_free_failures, max_entries, forget_after
        )
        self._accounts = _BackoffTable(
            account_base_delay, account_max_delay, account_free_failures, max_entries, forget_after
        )
        self._clock = clock

    def check(self, identity: str | None, address: str | None) -> ThrottleDecision:
        """Whether a sign-in attempt may be tried now (call before verifying credentials)."""
        now = self._clock()
        source = _source(address)
        wait = self._addresses.retry_after(source, now) if source else 0.0
        if identity:
            account = _normalize(identity)
            pair = (account, source)
            wait = max(wait, self._pairs.retry_after(pair, now))
            if self._pairs.live(pair, now) is not None:
                wait = max(wait, self._accounts.retry_after(account, now))
        return ThrottleDecision(wait <= 0.0, wait)

    def failure(self, identity: str | None, address: str | None) -> None:
        now = self._clock()
        source = _source(address)
        if source:
            self._addresses.fail(source, now)
        if identity:
            account = _normalize(identity)
            self._pairs.fail((account, source), now)
            self._accounts.fail(account, now)

    def success(self, identity: str | None, address: str | None) -> None:
        """A successful sign-in clears its (account, source) record only: the address keeps
        its own until it expires, so one valid account cannot launder guesses against others,
        and the account's count across sources stays while others may still be guessing."""
        if identity:
            self._pairs.reset((_normalize(identity), _source(address)))

    @property
    def tracked(self) -> int:
        return len(self._pairs.entries) + len(self._addresses.entries) + len(self._accounts.entries)


def _normalize(identity: str) -> str:
    return identity.strip().casefold()


def _source(address: str | None) -> str | None:
    """The throttled unit of an address: itself for IPv4, its /64 for IPv6."""
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # a Unix socket path or a name: count it as given
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
