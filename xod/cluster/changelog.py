"""The cluster's one ordered change log: a JetStream stream, one subject per pool connection.

A pool's owner (xod/cluster/ownership.py) does not write its change batches to its store: its
`PoolSync` hands them to that pool's `PoolChangeLog` (a `BatchSink`), which publishes them in
order to `xod.changes.<server id>`. Every instance's store follows the whole stream
(xod/cluster/replica.py), so a batch's revision is its stream sequence, the same everywhere.

Exactly one writer per pool: each publish says which sequence it expects last on the pool's
subject (`Nats-Expected-Last-Subject-Sequence`); an instance that lost its lease without
knowing it yet is refused by the server as soon as the new owner has published, and stops.
A publish that may have been lost (NATS restarting) is sent again with the same message id
(`Nats-Msg-Id`): JetStream drops the duplicate, nothing is published twice.

The log keeps each change `log_max_age` seconds. So that an instance starting later can still
build every pool from it, each owner publishes a checkpoint every third of that: the pool's
whole content as its replica holds it (a no-op for every store, hence for every client).

A resync (`replace_pool`) is published as the differences between what the pool holds and this
instance's replica, computed once the replica has applied everything published before: after a
takeover, clients see only what changed while nobody followed the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api
from nats.js.errors import APIError, BadRequestError, NotFoundError

from xod.backoff import Backoff
from xod.cache.objects.values import Changes, XoObject
from xod.cache.store import ChangeBatch, ObjectStore
from xod.cluster.nats import ClusterLink

log = logging.getLogger("xod.cluster")

STREAM = "XOD_CHANGES"
SUBJECT_PREFIX = "xod.changes"
# The pool (XO id of its pool object) a message's changes belong to.
POOL_HEADER = "Xod-Pool"
# Checkpoints per log_max_age: the log always holds a whole one of every owned pool.
CHECKPOINTS_PER_AGE = 3
# When the owner published it (Unix time, seconds): each replica's lag per pool.
TIME_HEADER = "Xod-Time"
# Messages stay below NATS's default max_payload (1 MiB): a bigger batch (a pool's first sync)
# goes as several messages, each its own revision, as big batches go to clients in frames.
MAX_MESSAGE_BYTES = 768 * 1024
# JetStream's code for "wrong last sequence": another instance published on the subject.
WRONG_LAST_SEQUENCE = 10071
# Seconds to wait for the replica to apply the log before a resync's differences.
REPLICA_WAIT = 30.0


def subject_of(server_id: str) -> str:
    return f"{SUBJECT_PREFIX}.{server_id}"


def server_of(subject: str) -> str:
    return subject[len(SUBJECT_PREFIX) + 1 :]


async def ensure_stream(link: ClusterLink, max_age: float) -> None:
    """Create the stream, or update its retention to `max_age` seconds. File storage: a
    restarted NATS server still has every change."""
    config = api.StreamConfig(
        name=STREAM,
        subjects=[f"{SUBJECT_PREFIX}.>"],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.OLD,
        max_age=max_age,
    )
    try:
        await link.js.add_stream(config)
    except BadRequestError:  # it exists, with another configuration
        await link.js.update_stream(config)


def encode(changes: Changes) -> bytes:
    enter = {i: o for i, o in changes.items() if o is not None}
    exits = [i for i, o in changes.items() if o is None]
    return orjson.dumps({"enter": enter, "exit": exits})


def decode(payload: bytes) -> Changes:
    body = orjson.loads(payload)
    changes: Changes = dict.fromkeys(body["exit"], None)
    changes.update(body["enter"])
    return changes


def split(changes: Changes) -> list[bytes]:
    """`changes` as messages of at most MAX_MESSAGE_BYTES (one object bigger than that alone)."""
    payload = encode(changes)
    if len(payload) <= MAX_MESSAGE_BYTES or len(changes) == 1:
        return [payload]
    items = list(changes.items())
    half = len(items) // 2
    return split(dict(items[:half])) + split(dict(items[half:]))


class Fenced(Exception):
    """Another instance published on this pool's subject: this one is not its owner any more."""


@dataclass(slots=True)
class _Item:
    kind: str  # apply | replace | drop | checkpoint
    pool_id: str
    objects: Mapping[str, XoObject | None]


class PoolChangeLog:
    """One pool's writer to the change log (its owner's `BatchSink`); publishes in order."""

    def __init__(
        self,
        link: ClusterLink,
        server_id: str,
        store: ObjectStore,
        wait_replica: Callable[[int, float], Any],
        on_fenced: Callable[[str], Any],
        log_max_age: float,
    ) -> None:
        self.link = link
        self.server_id = server_id
        self.subject = subject_of(server_id)
        self.store = store  # this instance's replica
        self._wait_replica = wait_replica
        self._on_fenced = on_fenced
        self.checkpoint_interval = log_max_age / CHECKPOINTS_PER_AGE
        self.pool_id: str | None = None  # the pool it publishes for (the last one it was given)
        # The last sequence on this pool's subject: what the next publish expects.
        self.last_sequence = 0
        self.published = 0  # messages published by this instance
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._held: _Item | None = None  # taken from the queue, not merged: the next one
        self._enqueued = 0
        self._done = 0
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    # -- BatchSink (called synchronously by the pool's PoolSync) --------------------------------

    def apply(self, pool_id: str, changes: Changes) -> ChangeBatch | None:
        self._put(_Item("apply", pool_id, changes))
        return None

    def replace_pool(self, pool_id: str, objects: Mapping[str, XoObject]) -> ChangeBatch | None:
        self._put(_Item("replace", pool_id, objects))
        return None

    def drop_pool(self, pool_id: str) -> ChangeBatch | None:
        self._put(_Item("drop", pool_id, {}))
        return None

    def _put(self, item: _Item) -> None:
        self.pool_id = item.pool_id
        if self._task is None:
            return  # not the owner: nothing of this pool is ours to publish
        # Unbounded on purpose: the PoolSync cannot wait here, and what it produces is bounded
        # by the pool's event stream, one event.from reply at a time.
        self._queue.put_nowait(item)
        self._enqueued += 1

    # -- lifecycle ------------------------------------------------------------------------------

    async def last_on_subject(self) -> int:
        """The sequence of the last message of this pool in the stream (0: none yet)."""
        try:
            message = await self.link.js.get_last_msg(STREAM, self.subject)
        except NotFoundError:
            return 0
        return int(message.seq or 0)

    def start(self, last_sequence: int) -> None:
        self.last_sequence = last_sequence
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"changelog {self.server_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            self._queue.get_nowait()
        self._held = None
        async with self._progress:
            self._done = self._enqueued
            self._progress.notify_all()

    async def flush(self) -> int:
        """Once everything handed over before this call is published: the last sequence."""
        target = self._enqueued
        async with self._progress:
            await self._progress.wait_for(lambda: self._done >= target or self._task is None)
        return self.last_sequence

    # -- publishing -----------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_checkpoint = loop.time() + self.checkpoint_interval
        while True:
            try:
                if self._held is not None:
                    item, self._held = self._held, None
                else:
                    async with asyncio.timeout(max(0.0, next_checkpoint - loop.time())):
                        item = await self._queue.get()
            except TimeoutError:
                next_checkpoint = loop.time() + self.checkpoint_interval
                if self.pool_id is None:
                    continue
                item = _Item("checkpoint", self.pool_id, {})
                self._enqueued += 1
            taken = 1
            if item.kind == "apply":
                item, merged = self._merge_waiting(item)
                taken += merged
            try:
                await self._publish_item(item)
            except Fenced:
                log.warning("pool %s: another instance publishes its changes", self.server_id)
                self._task = None
                self._on_fenced(self.server_id)
                return
            except Exception:
                # The pool's changes can no longer be published in order: give it up.
                log.exception("pool %s: publishing failed", self.server_id)
                self._task = None
                self._on_fenced(self.server_id)
                return
            finally:
                async with self._progress:
                    self._done += taken
                    self._progress.notify_all()

    def _merge_waiting(self, item: _Item) -> tuple[_Item, int]:
        """`item` and the change sets queued right after it, as one (the later change of an
        object wins): when publishing falls behind, one acknowledgement covers them all."""
        merged = 0
        changes: Changes | None = None
        while not self._queue.empty():
            following = self._queue.get_nowait()
            if following.kind != "apply" or following.pool_id != item.pool_id:
                self._held = following  # next, on its own
                break
            if changes is None:
                changes = dict(item.objects)
            changes.update(following.objects)
            merged += 1
        if changes is None:
            return item, 0
        return _Item("apply", item.pool_id, changes), merged

    async def _publish_item(self, item: _Item) -> None:
        if item.kind == "apply":
            changes: Changes = dict(item.objects)
        else:
            # Differences against the replica, once it holds everything published before.
            await self._wait_replica(self.last_sequence, REPLICA_WAIT)
            current = self.store.by_pool(item.pool_id)
            if item.kind == "drop":
                changes = dict.fromkeys(current, None)
            elif item.kind == "checkpoint":
                changes = dict(current)
            else:
                objects = item.objects
                changes = {i: None for i in current if i not in objects}
                changes.update({i: o for i, o in objects.items() if current.get(i) != o})
        if changes:
            for payload in split(changes):
                await self._publish(item.pool_id, payload)

    async def _publish(self, pool_id: str, payload: bytes) -> None:
        expected = self.last_sequence
        headers = {
            POOL_HEADER: pool_id,
            TIME_HEADER: f"{time.time():.6f}",
            "Nats-Expected-Last-Subject-Sequence": str(expected),
            # The same id when sent again: JetStream keeps one copy. The instance's name in
            # it: another instance's publish after the same sequence is refused, not taken
            # for this one.
            "Nats-Msg-Id": f"{self.link.name}:{self.subject}:{expected}",
        }
        backoff = Backoff(0.05, 1.0)
        while True:
            try:
                ack = await self.link.js.publish(
                    self.subject, payload, stream=STREAM, headers=headers
                )
                break
            except APIError as error:
                if error.err_code == WRONG_LAST_SEQUENCE:
                    raise Fenced(self.server_id) from None
                delay = backoff.next()
                log.warning("pool %s: publish refused (%s); again", self.server_id, error)
            except (NatsTimeoutError, NoRespondersError, NatsError, OSError) as error:
                delay = backoff.next()
                log.info("pool %s: publish not acknowledged (%r); again", self.server_id, error)
            await asyncio.sleep(delay)
        self.last_sequence = ack.seq
        self.published += 1
