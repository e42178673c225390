"""Several pools at once: one PoolConnection + PoolSync per registered server, sharing one store.

A pool whose connection stays down longer than `disconnect_grace` seconds leaves the cache (its
objects exit, as xo-server does after `xapiMarkDisconnectedDelay`); when it reconnects, the full
resync brings everything back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xod.cache.store import ObjectStore
from xod.cache.sync import PoolSync
from xod.xapi.connection import PoolConnection

ConnectionFactory = Callable[..., PoolConnection]


@dataclass(frozen=True, slots=True)
class PoolStatus:
    server_id: str
    status: str  # connecting | connected | disconnected (the connection's)
    last_error: str | None
    synced: bool  # the pool's objects are in the cache
    pool_id: str | None


class _Entry:
    def __init__(self, server_id: str, connection: PoolConnection, sync: PoolSync) -> None:
        self.server_id = server_id
        self.connection = connection
        self.sync = sync
        self.drop_timer: asyncio.TimerHandle | None = None


class PoolManager:
    def __init__(
        self,
        store: ObjectStore,
        *,
        disconnect_grace: float = 300.0,
        event_timeout: float = 60.0,
        connection_factory: ConnectionFactory = PoolConnection,
        sync_options: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.disconnect_grace = disconnect_grace
        self.event_timeout = event_timeout
        self._connection_factory = connection_factory
        self._sync_options = sync_options or {}
        self._entries: dict[str, _Entry] = {}

    def __contains__(self, server_id: object) -> bool:
        return server_id in self._entries

    def server_ids(self) -> list[str]:
        return list(self._entries)

    def sync_of(self, server_id: str) -> PoolSync:
        return self._entries[server_id].sync

    def add(
        self, server_id: str, url: str, username: str, password: str, **connection_options: Any
    ) -> PoolSync:
        """Register a server and start syncing it (in the background)."""
        if server_id in self._entries:
            raise ValueError(f"server {server_id} is already connected")
        connection = self._connection_factory(url, username, password, **connection_options)
        sync = self._new_sync(server_id, connection)
        entry = _Entry(server_id, connection, sync)
        self._entries[server_id] = entry
        sync.on_status.append(lambda _sync: self._on_status(entry))
        self._on_status(entry)
        self._begin(server_id, sync)
        return sync

    def runs_here(self, server_id: str) -> bool:
        """Whether this process syncs the pool and runs its actions (in a cluster, only the
        pool's owner does: xod/cluster/pools.py)."""
        return server_id in self._entries

    def _new_sync(self, server_id: str, connection: PoolConnection) -> PoolSync:
        return PoolSync(
            connection, self.store, event_timeout=self.event_timeout, **self._sync_options
        )

    def _begin(self, server_id: str, sync: PoolSync) -> None:
        sync.start()

    async def remove(self, server_id: str) -> None:
        """Stop syncing a server; its objects exit the cache."""
        entry = self._entries.pop(server_id, None)
        if entry is None:
            return
        self._cancel_drop(entry)
        await entry.sync.stop()
        entry.sync.drop()
        with contextlib.suppress(Exception):
            await entry.connection.close()

    async def close(self) -> None:
        for server_id in list(self._entries):
            await self.remove(server_id)

    def status(self, server_id: str) -> PoolStatus:
        entry = self._entries[server_id]
        return PoolStatus(
            server_id=server_id,
            status=entry.connection.status,
            last_error=entry.sync.last_error or entry.connection.last_error,
            synced=entry.sync.synced,
            pool_id=entry.sync.pool_id,
        )

    def statuses(self) -> list[PoolStatus]:
        return [self.status(server_id) for server_id in self._entries]

    # -- disconnection grace -------------------------------------------------------------------

    def _on_status(self, entry: _Entry) -> None:
        if not self.runs_here(entry.server_id):
            return
        if entry.connection.status == "connected":
            self._cancel_drop(entry)
        elif entry.drop_timer is None:
            loop = asyncio.get_running_loop()
            entry.drop_timer = loop.call_later(self.disconnect_grace, self._drop, entry)

    def _cancel_drop(self, entry: _Entry) -> None:
        if entry.drop_timer is not None:
            entry.drop_timer.cancel()
            entry.drop_timer = None

    def _drop(self, entry: _Entry) -> None:
        entry.drop_timer = None
        if self._entries.get(entry.server_id) is entry and entry.connection.status != "connected":
            entry.sync.drop()
