"""Shared state of a cluster: the JetStream key-value bucket `xod-state` behind the store.

Users, groups, ACLs, resource sets, tokens, servers and cloud-init templates
(`REPLICATED_TABLES` in xod/store/replicated.py, which says how rows, claims and conflicts work)
live in one bucket: one stream, so every instance sees the changes in the same order. Each
instance mirrors the whole bucket into a local SQLite file and the store classes run on that
copy unchanged.

The store is synchronous and called from the daemon's event loop, but a write must wait for the
bucket's acknowledgement. So the bucket has a NATS connection and an event loop of its own, in a
thread: a write blocks its caller for one round trip to NATS (bounded by `timeout`; with NATS
out of reach it fails at once, and reads go on from the mirror). The bucket's watcher runs there
too and applies each entry to the mirror in a worker thread (never blocking that loop, which a
write may be waiting on).

Changes made by other instances reach the daemon's loop through `on_remote_change`: that is how
a token deleted on one instance signs out the connections that used it on every other one
(xod/cluster/remote_changes.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
from argon2 import PasswordHasher
from nats.js.api import KeyValueConfig
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, KeyValue

from xod.backoff import Backoff
from xod.cluster.nats import ClusterLink, connect
from xod.store import DATABASE_NAME, Store
from xod.store.replicated import Change, ReplicatedDatabase, open_replicated_store
from xod.store.replication_errors import RevisionConflict, SharedStateUnavailable

log = logging.getLogger("xod.cluster.state")

BUCKET = "xod-state"
WRITE_TIMEOUT = 5.0  # seconds a write waits for the bucket before it fails
SYNC_BATCH = 1000  # entries applied to the mirror per transaction while catching up
RECONNECT_CHECK = 1.0  # seconds between two looks at NATS reconnections while all is quiet
EXPECTED_LAST = "Nats-Expected-Last-Subject-Sequence"
WRONG_LAST_SEQUENCE = (10071, 10164)  # JetStream's error codes for a failed revision check

T = TypeVar("T")


class SharedState:
    """The bucket, its watcher and the mirror's store; also the mirror's `KeyValueClient`."""

    def __init__(
        self,
        servers: list[str],
        instance: str,
        *,
        replicas: int = 1,
        timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self._servers = servers
        self._name = f"xod-{instance}-state"
        self._replicas = replicas
        self._timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="xod-shared-state", daemon=True)
        self._link: ClusterLink | None = None
        self._kv: KeyValue | None = None
        self._following: asyncio.Task[None] | None = None
        self._daemon_loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Callable[[list[Change]], None]] = []

    # -- the daemon's side ------------------------------------------------------------------

    async def open_store(
        self, state_dir: str | Path, hasher: PasswordHasher | None = None
    ) -> Store:
        """Connect, copy the whole bucket into a fresh mirror, and return the store on it."""
        self._daemon_loop = asyncio.get_running_loop()
        self._thread.start()
        store = open_replicated_store(state_dir, self, hasher)
        database = store.database
        assert isinstance(database, ReplicatedDatabase)
        database.listeners.append(self._forward)
        try:
            await self._on_own_loop(self._connect_and_follow(database))
        except BaseException:
            store.close()
            raise
        single = Path(state_dir) / DATABASE_NAME
        if store.users.count() == 0 and single.exists():  # a new cluster from a single instance
            written = await asyncio.to_thread(database.import_database, single)
            log.info("state directory imported", extra={"file": str(single), "rows": written})
        store.tokens.purge_expired()  # as `Store.open` does
        return store

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.connected

    def on_remote_change(self, listener: Callable[[list[Change]], None]) -> None:
        """Call `listener` on the daemon's loop with the rows other instances changed."""
        self._listeners.append(listener)

    def _forward(self, changes: list[Change]) -> None:
        assert self._daemon_loop is not None
        for listener in self._listeners:
            self._daemon_loop.call_soon_threadsafe(listener, changes)

    async def close(self) -> None:
        """Stop watching and disconnect (bounded); the store is closed by its owner."""
        if not self._thread.is_alive():
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._on_own_loop(self._disconnect())
        except TimeoutError:
            log.warning("NATS did not close in time", extra={"seconds": self._timeout})
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, self._timeout)

    async def _on_own_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    # -- the bucket's loop --------------------------------------------------------------------

    def _run_loop(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)  # nats-py asks for "the current loop" in places
        loop.run_forever()
        # Stopped by `close`: what the NATS client left running (its consumers' checks) ends
        # here rather than being destroyed pending.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    async def _connect_and_follow(self, database: ReplicatedDatabase) -> None:
        self._link = await connect(self._servers, self._name)
        js = self._link.js
        try:
            self._kv = await js.key_value(BUCKET)
        except nats.js.errors.BucketNotFoundError:
            # Instances starting together may all create it: the same configuration is no error.
            self._kv = await js.create_key_value(
                KeyValueConfig(bucket=BUCKET, history=1, replicas=self._replicas)
            )
        synced: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._following = asyncio.create_task(self._follow(database, synced), name="state-watch")

        def ended(task: asyncio.Task[None]) -> None:
            error = None if task.cancelled() else task.exception()
            if not synced.done():
                synced.set_exception(error or RuntimeError("stopped watching the bucket"))
            elif error is not None:
                log.error("stopped following the shared state", extra={"error": repr(error)})

        self._following.add_done_callback(ended)
        await synced
        log.info("shared state loaded", extra={"bucket": BUCKET})

    async def _follow(self, database: ReplicatedDatabase, synced: asyncio.Future[None]) -> None:
        """Watch the bucket for good. After NATS reconnects, watching starts over: the bucket's
        current entries again (deletions included, as markers), those the mirror already has
        ignored by revision. nats-py's own recovery of a watcher waits for missed heartbeats."""
        assert self._link is not None and self._kv is not None
        retry = Backoff(0.2, 5.0)
        while True:
            reconnects = self._link.nc.stats["reconnects"]
            try:
                watcher = await self._kv.watchall()
            except (nats.errors.Error, TimeoutError) as error:
                log.warning("cannot watch the shared state yet", extra={"error": repr(error)})
                await asyncio.sleep(retry.next())
                continue
            retry.reset()
            try:
                await self._apply_until_reconnected(watcher, database, synced, reconnects)
            finally:
                with contextlib.suppress(Exception):
                    await watcher.stop()  # type: ignore[no-untyped-call]

    async def _apply_until_reconnected(
        self,
        watcher: KeyValue.KeyWatcher,
        database: ReplicatedDatabase,
        synced: asyncio.Future[None],
        reconnects: int,
    ) -> None:
        assert self._link is not None
        batch: list[tuple[str, bytes | None, int]] = []
        caught_up = False
        while self._link.nc.stats["reconnects"] == reconnects or not self.connected:
            try:
                entry = await watcher.updates(timeout=RECONNECT_CHECK)  # type: ignore[no-untyped-call]
            except nats.errors.TimeoutError:
                continue
            if entry is None:  # the values the bucket held when watching started are all in
                await asyncio.to_thread(database.apply, batch)
                batch = []
                caught_up = True
                if not synced.done():
                    synced.set_result(None)
                continue
            if not isinstance(entry, KeyValue.Entry):
                return  # the watcher was stopped
            deleted = entry.operation in (KV_DEL, KV_PURGE)
            batch.append((entry.key, None if deleted else entry.value, entry.revision or 0))
            if caught_up or len(batch) >= SYNC_BATCH:
                await asyncio.to_thread(database.apply, batch)
                batch = []

    async def _disconnect(self) -> None:
        if self._following is not None:
            # Its watcher unsubscribes on the way out: a subscription whose messages nobody
            # reads any more would hold the link's drain until the timeout.
            self._following.cancel()
            await asyncio.gather(self._following, return_exceptions=True)
        if self._link is not None:
            await self._link.close()

    # -- KeyValueClient: called from the daemon's threads, run on the bucket's loop -------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if not self.connected:
            coroutine.close()
            raise SharedStateUnavailable("NATS is not connected: the shared state is read-only")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(self._timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SharedStateUnavailable(
                f"NATS did not acknowledge within {self._timeout:g} s"
            ) from None
        except nats.js.errors.KeyWrongLastSequenceError:
            raise RevisionConflict from None
        except nats.js.errors.APIError as error:
            if error.err_code in WRONG_LAST_SEQUENCE:
                raise RevisionConflict from None
            raise SharedStateUnavailable(f"JetStream refused the write: {error}") from None
        except nats.errors.Error as error:
            raise SharedStateUnavailable(f"NATS: {error}") from None

    def get(self, key: str) -> tuple[bytes | None, int]:
        return self._call(self._get(key))

    def create(self, key: str, value: bytes) -> int:
        assert self._kv is not None
        return self._call(self._kv.create(key, value))

    def update(self, key: str, value: bytes, last: int) -> int:
        assert self._kv is not None
        return self._call(self._kv.update(key, value, last=last))

    def delete(self, key: str, last: int = 0) -> int:
        return self._call(self._delete(key, last))

    async def _get(self, key: str) -> tuple[bytes | None, int]:
        assert self._kv is not None
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError as missing:  # deleted: the marker's revision
            return None, missing.entry.revision if missing.entry is not None else 0
        return entry.value, entry.revision or 0

    async def _delete(self, key: str, last: int) -> int:
        # KeyValue.delete does not return the marker's revision, which the mirror records.
        assert self._link is not None
        headers = {KV_OP: KV_DEL}
        if last:
            headers[EXPECTED_LAST] = str(last)
        ack = await self._link.js.publish(f"$KV.{BUCKET}.{key}", b"", headers=headers)
        return ack.seq
