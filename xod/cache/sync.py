"""Keeps one pool's objects in the store, fed by XAPI's event stream (the I/O edge of the cache).

As XO's `xen-api` does: take a token first (`event.inject` on the pool), fetch every class's
`get_all_records` in parallel, then follow `event.from` from that token, one store batch per
reply. After each reply the row counts (`valid_ref_counts`) are checked: a task mismatch
refetches the tasks, a persistent mismatch of another class refetches that class. EVENTS_LOST,
SESSION_INVALID or a reconnection resync the pool: everything is refetched and only the
differences reach the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

from xod.backoff import Backoff
from xod.cache.objects.classes import SYNCED_CLASSES
from xod.cache.objects.pool import PoolObjects
from xod.cache.objects.values import Changes, XoObject
from xod.cache.records import RAW_RECORDS_TYPE, RECORD_TYPES, SNAPSHOT_TYPES
from xod.cache.store import ChangeBatch
from xod.xapi.connection import PoolConnection
from xod.xapi.errors import TransportError, XapiError

log = logging.getLogger("xod.cache")

SyncState = Literal["stopped", "connecting", "syncing", "following", "waiting"]

# Errors of `<class>.get_all_records` meaning "this host has no such class": an empty class.
_MISSING_CLASS_CODES = frozenset({"MESSAGE_METHOD_UNKNOWN", "MESSAGE_REMOVED"})
# Replies in a row with a non-task count mismatch before that class is refetched: one reply can
# see a row created after its events were collected, the next one carries its event.
_MISMATCH_TOLERANCE = 2


# Wraps the synchronous part of a full sync (transform + store). The default does nothing; the
# daemon passes `xod.runtime.bulk_load` (GC off during the load, heap frozen and free memory
# given back after it): process-wide choices that are not the cache's to make.
BulkLoad = Callable[[], AbstractContextManager[object]]


class BatchSink(Protocol):
    """Where a pool's change sets go: the store itself (`ObjectStore`), or in a cluster the
    change log that every instance's store follows (xod/cluster/changelog.py)."""

    def apply(self, pool_id: str, changes: Changes) -> ChangeBatch | None: ...

    def replace_pool(self, pool_id: str, objects: Mapping[str, XoObject]) -> ChangeBatch | None: ...

    def drop_pool(self, pool_id: str) -> ChangeBatch | None: ...


class ResyncNeeded(Exception):
    """The event stream cannot be trusted any more: refetch everything."""


def _token_generation(token: str) -> int:
    try:
        return int(token.partition(",")[0] or 0)
    except ValueError:
        return 0


class PoolSync:
    """Drives one `PoolConnection` and keeps that pool's objects in `store`."""

    def __init__(
        self,
        connection: PoolConnection,
        store: BatchSink,
        *,
        event_timeout: float = 60.0,
        classes: Sequence[str] = SYNCED_CLASSES,
        retry_delay: float = 1.0,
        retry_delay_max: float = 30.0,
        bulk_load: BulkLoad = contextlib.nullcontext,
    ) -> None:
        self.connection = connection
        self.store = store
        self.event_timeout = event_timeout
        self.classes = list(classes)
        self.retry_delay = retry_delay
        self.retry_delay_max = retry_delay_max
        self.bulk_load = bulk_load
        self.state: SyncState = "stopped"
        self.synced = False
        self.last_error: str | None = None
        self.pool_id: str | None = None
        self.token: str | None = None
        self.full_syncs = 0
        self.class_reloads: dict[str, int] = {}
        self._objects = PoolObjects()
        self._mismatches: dict[str, int] = {}
        self._reconnected = False
        self._progress = asyncio.Condition()
        # Barriers share their event.inject (`_marker`): one in flight, the next one queued.
        self._inject_lock = asyncio.Lock()
        self._queued_marker: asyncio.Future[int] | None = None
        self._task: asyncio.Task[None] | None = None
        # Called with this PoolSync when its connection's status changes.
        self.on_status: list[Callable[[PoolSync], None]] = []
        connection.on_status.append(self._on_connection_status)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"pool-sync {self.connection}")
        return self._task

    async def stop(self) -> None:
        await self.pause()
        with contextlib.suppress(ValueError):
            self.connection.on_status.remove(self._on_connection_status)

    async def pause(self) -> None:
        """Stop following the pool, for now: `start()` resumes with a full sync (another
        instance may have followed it meanwhile)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.state = "stopped"
        self.synced = False

    def id_of(self, ref: str) -> str | None:
        """The XO id of one of this pool's OpaqueRefs (None if the cache holds no such object)."""
        return self._objects.id_of(ref)

    def drop(self) -> None:
        """Remove this pool's objects from the store (exits); the next sync brings them back."""
        if self.pool_id is not None:
            self.store.drop_pool(self.pool_id)
        self.synced = False
        # Whatever reconnects next must refetch everything.
        self._reconnected = True

    async def run(self) -> None:
        """Connect, sync and follow events forever; every failure ends in a full resync."""
        backoff = Backoff(self.retry_delay, self.retry_delay_max)
        while True:
            try:
                self.state = "connecting"
                await self.connection.connect()
                await self.full_sync()
                backoff.reset()
                await self._follow()
            except asyncio.CancelledError:
                raise
            except ResyncNeeded as reason:
                log.info("pool %s: resync (%s)", self.pool_id, reason)
                continue
            except (TransportError, XapiError) as error:
                delay = backoff.next()
                self.last_error = str(error)
                log.warning("pool %s: %s; retrying in %.1f s", self.pool_id, error, delay)
            except Exception as error:  # a bug or a malformed reply: never stop following
                delay = backoff.next()
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("pool %s: sync failed; retrying in %.1f s", self.pool_id, delay)
            self.state = "waiting"
            await asyncio.sleep(delay)

    # -- the two phases ------------------------------------------------------------------------

    async def full_sync(self) -> None:
        """Token first, then every class in parallel, then exactly the differences to the store."""
        self.state = "syncing"
        self._reconnected = False
        connection = self.connection
        pool_ref = connection.pool_ref
        if pool_ref is None:
            pool_ref = next(iter(await connection.call("pool.get_all")))
        token = await connection.call("event.inject", "pool", pool_ref)
        objects = PoolObjects()
        # `records` only holds the dict that `load` empties: the raw records must die before the
        # load ends (the hook may freeze the heap), each class's as soon as it is transformed.
        records = await self._fetch_all()
        # Synchronous: the hook's process-wide settings (GC off) never span an await.
        with self.bulk_load():
            loaded = objects.load(records, consume=True)
            previous = self.pool_id
            if previous is not None and previous != objects.pool_id:
                self.store.drop_pool(previous)
            self.pool_id = objects.pool_id
            self._objects = objects
            self.store.replace_pool(objects.pool_id, loaded)  # type: ignore[arg-type]  # every pool has its pool record
            del loaded
        connection.set_known_hosts(objects.host_addresses())
        self._mismatches.clear()
        self.full_syncs += 1
        self.synced = True
        self.last_error = None
        await self._advance(token)

    async def _fetch_all(self) -> dict[str, Mapping[str, Any]]:
        """Every class's records, fetched in parallel."""
        records: dict[str, Mapping[str, Any]] = {}

        async def fetch(cls: str) -> None:
            records[cls] = await self._fetch(cls)

        # The results go into `records`, not through gather's result list: asyncio can keep the
        # finished gather future (and so its results) referenced after the await.
        await asyncio.gather(*(fetch(cls) for cls in self.classes))
        return {cls: records[cls] for cls in self.classes}

    async def _fetch(self, cls: str) -> Mapping[str, Any]:
        """ref → record, each record still raw JSON (over JSON-RPC): PoolObjects decodes it when
        it transforms it, so that its decode garbage is freed at once."""
        try:
            records: Mapping[str, Any] = await self.connection.call(
                f"{cls}.get_all_records",
                result_type=RAW_RECORDS_TYPE if cls in RECORD_TYPES else None,
            )
            return records
        except XapiError as error:
            if error.code in _MISSING_CLASS_CODES:
                return {}
            raise

    async def _follow(self) -> None:
        self.state = "following"
        event_classes = [cls.lower() for cls in self.classes]
        while True:
            try:
                reply = await self.connection.event_from(
                    event_classes,
                    self.token,  # type: ignore[arg-type]  # _sync set it before following
                    self.event_timeout,
                    snapshot_types=SNAPSHOT_TYPES,
                )
            except XapiError as error:
                if error.code in ("EVENTS_LOST", "SESSION_INVALID"):
                    raise ResyncNeeded(error.code) from error
                raise
            if self._reconnected:
                # A new session or master: the stream may have a hole; refetch everything.
                raise ResyncNeeded("reconnected")
            await self.apply_reply(reply)

    async def apply_reply(self, reply: Mapping[str, Any]) -> None:
        events = reply.get("events") or ()
        if events:
            changes = self._objects.apply(events)
            if changes:
                self.store.apply(self.pool_id, changes)  # type: ignore[arg-type]  # the sync set it
        await self._check_counts(reply.get("valid_ref_counts") or {})
        await self._advance(reply["token"])

    async def _check_counts(self, counts: Mapping[str, Any]) -> None:
        for cls in self.classes:
            event_class = cls.lower()
            expected = counts.get(event_class)
            if expected is None:
                continue  # not a DB table (message) or not reported
            if int(expected) == self._objects.count(event_class):
                self._mismatches.pop(event_class, None)
                continue
            seen = self._mismatches.get(event_class, 0) + 1
            self._mismatches[event_class] = seen
            # Tasks vanish without events (toolstack restart): XO refetches them at once.
            if event_class == "task" or seen >= _MISMATCH_TOLERANCE:
                await self.reload_class(cls)

    async def reload_class(self, cls: str) -> None:
        records = await self._fetch(cls)
        changes = self._objects.reload_class(cls, records)
        del records
        self._mismatches.pop(cls.lower(), None)
        self.class_reloads[cls] = self.class_reloads.get(cls, 0) + 1
        if changes:
            self.store.apply(self.pool_id, changes)  # type: ignore[arg-type]  # the sync set it

    async def _advance(self, token: str) -> None:
        async with self._progress:
            self.token = token
            self._progress.notify_all()

    # -- for callers that need "the cache has caught up" ---------------------------------------

    async def wait_synced(self) -> None:
        """Wait for a full sync (wrap in `asyncio.timeout` to bound it)."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.synced and self.token is not None)

    async def barrier(self) -> None:
        """Return once every change made on the pool before this call is in the store."""
        marker = await self._marker()
        async with self._progress:
            await self._progress.wait_for(
                lambda: self.token is not None and _token_generation(self.token) > marker
            )

    async def _marker(self) -> int:
        """The generation of an event.inject sent after this call began. Barriers arriving
        while one is in flight share the next one, sent when it returns: a burst of writes
        costs two injects, not one per write."""
        queued = self._queued_marker
        if queued is not None:  # not sent yet: it will be, after this call began
            return await asyncio.shield(queued)
        queued = self._queued_marker = asyncio.get_running_loop().create_future()
        # Followers see this leader's failure; no follower: nobody reads it, and that is fine.
        queued.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            async with self._inject_lock:
                self._queued_marker = None  # from now on, arrivals queue the next inject
                pool_ref = self.connection.pool_ref or next(
                    iter(await self.connection.call("pool.get_all"))
                )
                token = await self.connection.call("event.inject", "pool", pool_ref)
        except BaseException as error:
            if self._queued_marker is queued:
                self._queued_marker = None
            if not queued.done():
                # A follower retries as after any transport failure (xod/api/commands.py).
                failure = error if isinstance(error, Exception) else TransportError("cancelled")
                queued.set_exception(failure)
            raise
        marker = _token_generation(token)
        queued.set_result(marker)
        return marker

    # -- connection status ---------------------------------------------------------------------

    def _on_connection_status(self, connection: PoolConnection) -> None:
        if connection.status != "connected":
            self._reconnected = True
        for callback in list(self.on_status):
            try:
                callback(self)
            except Exception:
                log.exception("pool sync status callback failed")
