"""This instance's replica: its `ObjectStore` follows the change log (xod/cluster/changelog.py)
in stream order, each message applied at its stream sequence as the store's revision.

Every instance applies the same messages in the same order, so every store holds the same
objects at the same revisions, and a client may resume on any instance with the `since` it got
from another. The stream is read by an ordered consumer: JetStream redelivers from the last
applied sequence after a NATS restart or reconnection, so nothing is skipped or applied twice
(a sequence not after the store's revision is ignored anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext

from xod.cache.store import ObjectStore
from xod.cluster.changelog import (
    POOL_HEADER,
    STREAM,
    SUBJECT_PREFIX,
    TIME_HEADER,
    decode,
    server_of,
)
from xod.cluster.nats import ClusterLink

log = logging.getLogger("xod.cluster")


class Replica:
    """Feeds `store` from the stream; knows each pool connection's pool and last sequence."""

    def __init__(self, link: ClusterLink, store: ObjectStore) -> None:
        self.link = link
        self.store = store
        # server id → its pool's id, and the sequence of its last message applied here.
        self.pool_of_server: dict[str, str] = {}
        self.applied: dict[str, int] = {}
        # server id → seconds between its last change's publication and its application here.
        self.lag_seconds: dict[str, float] = {}
        # Messages of the stream not applied here yet, as of the last one applied.
        self.pending = 0
        self.messages = 0
        self.changes = 0  # objects entered or exited, over all messages applied
        self.last_applied_at: float | None = None
        # Called with (server id, pool id) when a pool connection's pool is first seen.
        self.on_pool: list[Callable[[str, str], Any]] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._pool_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._subscription: JetStreamContext.PushSubscription | None = None

    @property
    def revision(self) -> int:
        return self.store.revision

    async def start(self, catch_up_timeout: float) -> None:
        """Follow the stream from its start; returns once what it held at the call is applied
        (bounded by `catch_up_timeout`)."""
        self._subscription = await self.link.js.subscribe(
            f"{SUBJECT_PREFIX}.>",
            stream=STREAM,
            cb=self._on_message,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.ALL,
        )
        state = (await self.link.js.stream_info(STREAM)).state
        if not state.messages:
            # Every change aged out of the log: nothing to apply, the revision goes on from it.
            self.store.advance(int(state.last_seq))
        await self.wait_for(int(state.last_seq), catch_up_timeout)

    async def stop(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        self._waiters.clear()

    async def _on_message(self, message: Msg) -> None:
        metadata = message.metadata
        sequence = int(metadata.sequence.stream)
        self.pending = int(metadata.num_pending or 0)
        if sequence > self.store.revision:
            server_id = server_of(message.subject)
            headers = message.headers or {}
            pool_id = headers.get(POOL_HEADER)
            if pool_id is None:
                log.warning("change log message %d without its pool; skipped", sequence)
                self.store.advance(sequence)
            else:
                changes = decode(message.data)
                self.changes += len(changes)
                self.store.apply(pool_id, changes, revision=sequence)
                if self.pool_of_server.get(server_id) != pool_id:
                    self.pool_of_server[server_id] = pool_id
                    for callback in list(self.on_pool):
                        callback(server_id, pool_id)
                    for pool_waiter in self._pool_waiters.pop(server_id, ()):
                        if not pool_waiter.done():
                            pool_waiter.set_result(None)
            self.applied[server_id] = sequence
            self.messages += 1
            self.last_applied_at = time.monotonic()
            published = headers.get(TIME_HEADER)
            if published is not None:
                self.lag_seconds[server_id] = max(0.0, time.time() - float(published))
        self._wake()

    def _wake(self) -> None:
        revision = self.store.revision
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, waiter in self._waiters:
            if waiter.done():
                continue
            if target <= revision:
                waiter.set_result(None)
            else:
                still.append((target, waiter))
        self._waiters = still

    async def wait_pool(self, server_id: str) -> None:
        """Return once the pool connection's objects are here (wrap in `asyncio.timeout`)."""
        if server_id in self.pool_of_server:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._pool_waiters.setdefault(server_id, []).append(waiter)
        await waiter

    async def wait_for(self, revision: int, timeout: float) -> None:
        """Return once the store reached `revision`; TimeoutError after `timeout` seconds."""
        if revision <= self.store.revision:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, waiter))
        async with asyncio.timeout(timeout):
            await waiter
