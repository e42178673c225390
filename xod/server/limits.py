"""Daemon-wide bounds on what clients make xod hold: output queued for them, calls in flight.

Each connection has its own output budget (a signed-in one `limits.client_buffer_bytes`, an
anonymous one the much smaller `limits.anonymous_buffer_bytes`); past it, xod stops reading
that connection's requests until the client reads what it was sent (back-pressure: its
requests wait in the kernel, not in xod). On top of that, the output queued for all
connections together is bounded (`limits.output_buffer_bytes`): past it, connections that
have output waiting and anonymous ones stop being read, while signed-in clients that keep up
are still served. Calls in flight are bounded daemon-wide as well (`limits.max_calls_in_flight`),
anonymous connections getting at most half of them.

Memory freed after a burst goes back to the system (`xod.runtime.reclaim_memory`), at most
every few seconds: without it, RSS stays at its peak after the clients are gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from xod.runtime import reclaim_memory

DEFAULT_OUTPUT_BUFFER_BYTES = 256 * 1024 * 1024
DEFAULT_ANONYMOUS_BUFFER_BYTES = 256 * 1024
DEFAULT_MAX_CALLS_IN_FLIGHT = 1024
# Calls at once on one anonymous connection (a signed-in one: `max_concurrent_calls`): the
# replies being built count against no queue yet.
ANONYMOUS_CONCURRENT_CALLS = 4
# A burst is this much queued output; memory is given back once it falls to a quarter.
RELEASE_AFTER_BYTES = 16 * 1024 * 1024
RELEASE_INTERVAL = 5.0
RELEASE_QUIET = 1.0
RELEASE_FOLLOW_UPS = 2


class DaemonLimits:
    """The shared counters, and the readers waiting for them to fall."""

    __slots__ = (
        "_peak",
        "_release_handle",
        "_released_at",
        "anonymous_buffer_bytes",
        "calls",
        "max_calls",
        "output_buffer_bytes",
        "queued",
        "release",
        "release_after_bytes",
        "waiters",
    )

    def __init__(
        self,
        *,
        output_buffer_bytes: int = DEFAULT_OUTPUT_BUFFER_BYTES,
        anonymous_buffer_bytes: int = DEFAULT_ANONYMOUS_BUFFER_BYTES,
        max_calls: int = DEFAULT_MAX_CALLS_IN_FLIGHT,
        release: Callable[[], None] = reclaim_memory,
    ) -> None:
        self.output_buffer_bytes = output_buffer_bytes
        self.anonymous_buffer_bytes = anonymous_buffer_bytes
        self.max_calls = max_calls
        self.queued = 0  # output bytes queued by every connection
        self.calls = 0  # call slots taken by every connection
        # Readers waiting for the daemon-wide counters to fall (woken all at once: only
        # under overload are there any).
        self.waiters: set[asyncio.Future[None]] = set()
        # How memory is given back, and the burst after which it is.
        self.release = release
        self.release_after_bytes = RELEASE_AFTER_BYTES
        self._peak = 0
        self._released_at = float("-inf")
        self._release_handle: asyncio.TimerHandle | None = None

    # -- output ---------------------------------------------------------------------------------

    @property
    def output_full(self) -> bool:
        return self.queued >= self.output_buffer_bytes

    def queue(self, size: int) -> None:
        self.queued += size
        if self.queued > self._peak:
            self._peak = self.queued

    def unqueue(self, size: int) -> None:
        self.queued -= size
        if self.waiters and not self.output_full:
            self.wake()
        if self._peak >= self.release_after_bytes and self.queued <= self._peak // 4:
            self._schedule_release()

    # -- calls ----------------------------------------------------------------------------------

    def calls_available(self, slots: int, signed_in: bool) -> bool:
        limit = self.max_calls if signed_in else self.max_calls // 2
        # With nothing running, any call may start (a batch wider than a small limit too).
        return self.calls == 0 or self.calls + slots <= limit

    def take_calls(self, slots: int) -> None:
        self.calls += slots

    def end_calls(self, slots: int) -> None:
        self.calls -= slots
        if self.waiters:
            self.wake()

    # -- waking ---------------------------------------------------------------------------------

    def wake(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()

    # -- giving memory back ---------------------------------------------------------------------

    def _schedule_release(self) -> None:
        """Give memory back once the burst is over: `RELEASE_QUIET` seconds after the last
        output freed (connections closing one after another free theirs over a while), and
        not more often than every `RELEASE_INTERVAL`."""
        loop = asyncio.get_running_loop()
        when = max(loop.time() + RELEASE_QUIET, self._released_at + RELEASE_INTERVAL)
        if self._release_handle is not None:
            self._release_handle.cancel()
        self._release_handle = loop.call_at(when, self._release_now)

    def _release_now(self, follow_ups: int = RELEASE_FOLLOW_UPS) -> None:
        self._release_handle = None
        self._released_at = asyncio.get_running_loop().time()
        self._peak = self.queued
        self.release()  # one full collection and trim per burst (xod/runtime.py)
        if follow_ups:
            # What the burst's connections hold beyond their queues (buffers, parsers) goes
            # only once they have closed, which can take their close grace: release again.
            loop = asyncio.get_running_loop()
            self._release_handle = loop.call_later(
                RELEASE_INTERVAL, self._release_now, follow_ups - 1
            )

    def close(self) -> None:
        if self._release_handle is not None:
            self._release_handle.cancel()
            self._release_handle = None
