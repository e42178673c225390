"""The outbound side of one connection: pre-framed bytes to its transport, bounded.

Fast path: nothing queued and the transport is not paused → the frame goes straight to
`transport.write` from the caller (the store listener), with no task switch and no await.
Otherwise frames wait in a queue with a byte budget, drained by a short-lived writer task that
exists only while something is queued (an idle connection costs no task).

Over budget, change notifications stop being queued: the connection switches to coalescing —
per stream (the `all` notification or one subscription), id → latest object or None — and the
net state is encoded for this connection alone once the queue has drained. Memory stays under
the budget plus the transport's high-water mark; the coalesced map only references objects the
store shares. A connection behind (something queued) for longer than `max_lag` is closed by the
fan-out's watchdog.

Every byte queued is also counted daemon-wide (xod/server/limits.py); the connection's reader
waits in `room_waiter` while its output is over its limit, and is woken as the queue drains.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from xod.metrics import SLOW_CLIENTS_CLOSED, WS_OUTPUT
from xod.server.aiohttp_edge import wait_writable, writing_paused
from xod.server.frames import Piece, WireFormat
from xod.server.limits import DaemonLimits

log = logging.getLogger("xod.server")

SLOW_CLIENT_CLOSE_CODE = 4008
# Queued responses (which cannot be coalesced) may exceed the budget by this factor before
# the connection is closed (plus the one response that crossed it).
HARD_LIMIT_FACTOR = 2
_YIELD_EVERY = 64


class Stream(Protocol):
    """A change stream a connection receives (the `all` scope, or one subscription)."""

    def coalesced_frames(
        self, fmt: WireFormat, items: dict[str, Any], revision: int
    ) -> list[bytes]: ...


class Peer:
    __slots__ = (
        "__weakref__",
        "_drainer",
        "_lagging",
        "_on_close",
        "behind_since",
        "budget",
        "close_reason",
        "closed",
        "fmt",
        "last_ping",
        "last_seen",
        "limits",
        "pending",
        "protocol",
        "queue",
        "queued_bytes",
        "room_waiter",
        "signed_in",
        "transport",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: Any,
        fmt: WireFormat,
        *,
        budget: int,
        limits: DaemonLimits,
        lagging: set[Peer],
        on_close: Callable[[int, str], None],
    ) -> None:
        self.transport = transport
        self.protocol = protocol  # aiohttp's, read through xod/server/aiohttp_edge.py only
        self.fmt = fmt
        self.budget = budget  # once signed in; before, the daemon's anonymous budget
        self.limits = limits
        self.signed_in = False
        # The connection's reader, waiting for this output to fall under `output_limit`.
        self.room_waiter: asyncio.Future[None] | None = None
        # Created when something must wait, dropped once drained: an idle connection holds
        # no queue (an empty deque is ~600 bytes; 10k idle connections are the common case).
        self.queue: deque[bytes | Iterator[Piece]] | None = None
        self.queued_bytes = 0
        # Coalescing mode when not None: stream → [id → object or None, latest revision].
        self.pending: dict[Stream, list[Any]] | None = None
        self.behind_since: float | None = None
        self.closed = False
        self.close_reason: str | None = None
        # Keepalive (driven by the fan-out's watchdog): when the peer last sent anything, and
        # when it was last pinged.
        self.last_seen = self.last_ping = time.monotonic()
        self._lagging = lagging
        self._on_close = on_close
        self._drainer: asyncio.Task[None] | None = None

    @property
    def held_bytes(self) -> int:
        """Bytes this connection holds: its queue plus the transport's write buffer."""
        return self.queued_bytes + self.transport.get_write_buffer_size()

    @property
    def output_limit(self) -> int:
        """Output held past which its requests are no longer read."""
        return self.budget if self.signed_in else self.limits.anonymous_buffer_bytes

    def has_room(self) -> bool:
        """Whether the connection's next request may be read: its own output under its limit,
        and, when the daemon's output buffer is full, nothing of its own waiting (the heavy
        and the anonymous connections are the ones paused)."""
        held = self.queued_bytes
        if writing_paused(self.protocol):  # else the transport's buffer is on its way out
            held += self.transport.get_write_buffer_size()
        if held >= self.output_limit:
            return False
        return not self.limits.output_full or (self.signed_in and held == 0)

    async def wait_for_room(self) -> None:
        """Wait until `has_room()`, woken as this connection's output drains or, when the
        daemon's output buffer is full, as anyone's does."""
        loop = asyncio.get_running_loop()
        while not self.closed and not self.has_room():
            waiter = self.room_waiter = loop.create_future()
            if self.limits.output_full:
                self.limits.waiters.add(waiter)
            if self._drainer is None and (self.queue or writing_paused(self.protocol)):
                self._fell_behind()  # its own output is held: a drainer reports progress
            try:
                await waiter
            finally:
                self.room_waiter = None
                self.limits.waiters.discard(waiter)

    # -- producers (synchronous, never block) ---------------------------------------------------

    def send(self, frame: bytes) -> None:
        """A frame that must arrive as is (a response)."""
        if self.closed:
            return
        if not self.queue and self.pending is None and not writing_paused(self.protocol):
            self._write(frame)
            return
        # Only what is already queued counts against the limit: one response bigger than
        # the limit on its own (getAllObjects of a big pool) is queued, not a slow client.
        # (Reading stops at the limit: only the calls already running can take it past.)
        if self.queued_bytes > self.output_limit * HARD_LIMIT_FACTOR:
            self.fail(SLOW_CLIENT_CLOSE_CODE, "client too slow: outbound queue over its limit")
            return
        self._queue().append(frame)
        self._count(len(frame))
        self._fell_behind()

    def send_stream(self, frames: Iterator[Piece]) -> None:
        """Frames produced lazily as the connection drains (a snapshot)."""
        if self.closed:
            return
        self._queue().append(frames)
        self._fell_behind()

    def send_changes(
        self,
        stream: Stream,
        frames: Sequence[bytes],
        enter: dict[str, Any],
        exit_ids: Sequence[str],
        revision: int,
    ) -> None:
        """Change notifications: written, queued, or coalesced when over budget."""
        if self.closed:
            return
        if self.pending is not None:
            self._merge(stream, enter, exit_ids, revision)
            return
        if not self.queue and not writing_paused(self.protocol):
            for frame in frames:
                self._write(frame)
            return
        size = 0
        for frame in frames:
            size += len(frame)
        if self.queued_bytes + size > self.budget:
            self.pending = {}
            self._merge(stream, enter, exit_ids, revision)
        else:
            self._queue().extend(frames)
            self._count(size)
        self._fell_behind()

    def forget(self, stream: Stream) -> None:
        """Drop a stream's coalesced changes (unsubscribed)."""
        if self.pending is not None:
            self.pending.pop(stream, None)

    # -- closing --------------------------------------------------------------------------------

    def fail(self, code: int, reason: str) -> None:
        """Stop sending and close the connection with `code` and `reason`."""
        if self.closed:
            return
        self.close_reason = reason
        self.detach()
        if code == SLOW_CLIENT_CLOSE_CODE:
            SLOW_CLIENTS_CLOSED.inc()
        log.debug("closing connection: %s", reason)
        self._on_close(code, reason)

    def detach(self) -> None:
        """The connection is gone: release everything."""
        self.closed = True
        self.queue = None
        self._count(-self.queued_bytes)
        self.pending = None
        self._lagging.discard(self)
        if self._drainer is not None:
            self._drainer.cancel()

    # -- internals ------------------------------------------------------------------------------

    def _count(self, size: int) -> None:
        """`size` more bytes queued (fewer when negative), here and daemon-wide."""
        self.queued_bytes += size
        if size > 0:
            self.limits.queue(size)
        elif size < 0:
            self.limits.unqueue(-size)
            waiter = self.room_waiter
            if waiter is not None and not waiter.done() and self.has_room():
                waiter.set_result(None)

    def _queue(self) -> deque[bytes | Iterator[Piece]]:
        if self.queue is None:
            self.queue = deque()
        return self.queue

    def _write(self, frame: Piece) -> None:
        transport = self.transport
        if transport.is_closing():
            self.detach()
            return
        transport.write(frame)
        output = WS_OUTPUT
        output.frames += 1
        output.bytes += len(frame)

    def _merge(
        self, stream: Stream, enter: dict[str, Any], exit_ids: Sequence[str], revision: int
    ) -> None:
        assert self.pending is not None
        entry = self.pending.get(stream)
        if entry is None:
            entry = self.pending[stream] = [{}, revision]
        items = entry[0]
        items.update(enter)
        for object_id in exit_ids:
            items[object_id] = None
        entry[1] = revision

    def _fell_behind(self) -> None:
        if self.behind_since is None:
            self.behind_since = time.monotonic()
            self._lagging.add(self)
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        queue = self._queue()
        written = 0
        frame: Piece | None  # a queued frame, or the next one of a queued iterator (None: spent)
        try:
            while not self.closed:
                if writing_paused(self.protocol):
                    await wait_writable(self.protocol)
                    continue
                if queue:
                    item = queue[0]
                    if isinstance(item, bytes):
                        queue.popleft()
                        self._count(-len(item))
                        frame = item
                    else:
                        frame = next(item, None)
                        if frame is None:
                            queue.popleft()
                            continue
                    self._write(frame)
                    written += 1
                    if written % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                elif self.pending is not None:
                    pending, self.pending = self.pending, None
                    for stream, (items, revision) in pending.items():
                        for frame in stream.coalesced_frames(self.fmt, items, revision):
                            queue.append(frame)
                            self._count(len(frame))
                else:
                    break
        except (ConnectionError, RuntimeError):
            self.detach()
        except asyncio.CancelledError:
            pass
        finally:
            self._drainer = None
            if not self.closed and not queue and self.pending is None:
                self.behind_since = None
                self._lagging.discard(self)
                self.queue = None
            waiter = self.room_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)  # the reader checks again
