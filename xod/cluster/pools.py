"""The pool manager of a cluster instance: every instance knows every pool connection, but only
the pool's owner (its lease, xod/cluster/ownership.py) syncs it, and its `PoolSync` writes to the
change log (xod/cluster/changelog.py) instead of the store. The store is the replica
(xod/cluster/replica.py), fed by the log on every instance, the owner's included.

Taking a pool over: read the last sequence of the pool's subject, wait for the replica to have
applied it, then sync the pool from XAPI; the resync publishes only the differences with the
replica. Losing it: stop following the pool at once, publish nothing more. An instance that
stops (or forgets a server) releases its leases: another instance takes over without waiting
for them to age out, and the pool's objects stay in every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from xod.cache.pools import PoolManager, PoolStatus
from xod.cache.store import ObjectStore
from xod.cache.sync import PoolSync
from xod.cluster.changelog import REPLICA_WAIT, PoolChangeLog
from xod.cluster.nats import ClusterLink
from xod.cluster.ownership import Leases
from xod.cluster.replica import Replica
from xod.xapi.connection import PoolConnection

log = logging.getLogger("xod.cluster")


class OwnedPoolSync(PoolSync):
    """A PoolSync whose "the cache has caught up" also waits for the change log to be published
    and applied by this instance's replica (read-your-writes on the owner), and whose "synced"
    is the replica's: the pool's objects are here, whichever instance synced them."""

    server_id: str
    changelog: PoolChangeLog
    replica: Replica

    async def wait_synced(self) -> None:
        await self.replica.wait_pool(self.server_id)

    async def barrier(self) -> None:
        await super().barrier()
        sequence = await self.changelog.flush()
        await self.replica.wait_for(sequence, REPLICA_WAIT)


class ClusteredPoolManager(PoolManager):
    def __init__(
        self,
        store: ObjectStore,
        *,
        link: ClusterLink,
        replica: Replica,
        instance: str,
        lease_seconds: float,
        log_max_age: float,
        **options: Any,
    ) -> None:
        super().__init__(store, **options)
        self.link = link
        self.replica = replica
        self.instance = instance
        self.log_max_age = log_max_age
        self.leases = Leases(link, instance, lease_seconds, self._acquired, self._lost)
        self._changelogs: dict[str, PoolChangeLog] = {}
        self._takeovers: dict[str, asyncio.Task[None]] = {}
        self.takeovers = 0
        # The daemon is stopping: pools are left, not removed (see `remove`).
        self.stopping = False
        # Called with (server id, owned?) when this instance gains or loses a pool.
        self.on_ownership: list[Any] = []
        replica.on_pool.append(self._pool_seen)

    async def start(self) -> None:
        await self.leases.start()

    def runs_here(self, server_id: str) -> bool:
        return server_id in self and self.leases.owns(server_id)

    def changelog_of(self, server_id: str) -> PoolChangeLog:
        return self._changelogs[server_id]

    def _new_sync(self, server_id: str, connection: PoolConnection) -> PoolSync:
        changelog = PoolChangeLog(
            self.link,
            server_id,
            self.store,
            self.replica.wait_for,
            self._fenced,
            self.log_max_age,
        )
        self._changelogs[server_id] = changelog
        sync = OwnedPoolSync(
            connection, changelog, event_timeout=self.event_timeout, **self._sync_options
        )
        sync.server_id = server_id
        sync.changelog = changelog
        sync.replica = self.replica
        sync.pool_id = self.replica.pool_of_server.get(server_id)
        return sync

    def _begin(self, server_id: str, sync: PoolSync) -> None:
        self.leases.hold(server_id)

    async def remove(self, server_id: str) -> None:
        """The server was removed or disabled: its owner publishes that its objects exit, as
        on a single instance, then every instance stops competing for it. While the daemon
        stops (`stopping`), the objects stay: another instance takes the pool over."""
        changelog = self._changelogs.get(server_id)
        if changelog is not None and self.runs_here(server_id) and not self.stopping:
            sync = self.sync_of(server_id)
            await sync.pause()
            sync.drop()
            try:
                async with asyncio.timeout(REPLICA_WAIT):
                    await changelog.flush()
            except TimeoutError:
                log.warning("pool %s: its objects' exit was not published", server_id)
        await self.leases.release(server_id)
        changelog = self._changelogs.pop(server_id, None)
        if changelog is not None:
            await changelog.stop()  # from now on the sync's drop publishes nothing
        await super().remove(server_id)

    def status(self, server_id: str) -> PoolStatus:
        if self.runs_here(server_id):
            return super().status(server_id)
        pool_id = self.replica.pool_of_server.get(server_id)
        return PoolStatus(
            server_id=server_id,
            status="connected" if pool_id is not None else "connecting",
            last_error=None,
            synced=pool_id is not None,
            pool_id=pool_id,
        )

    # -- ownership ------------------------------------------------------------------------------

    def _pool_seen(self, server_id: str, pool_id: str) -> None:
        if server_id in self and not self.runs_here(server_id):
            self.sync_of(server_id).pool_id = pool_id

    async def _acquired(self, server_id: str) -> None:
        # In the background: the lease's renewals must not wait for a pool's sync.
        self._takeovers[server_id] = asyncio.create_task(
            self._take_over(server_id), name=f"takeover {server_id}"
        )

    async def _take_over(self, server_id: str) -> None:
        try:
            changelog = self._changelogs[server_id]
            last = await changelog.last_on_subject()
            await self.replica.wait_for(last, REPLICA_WAIT)
            changelog.start(last)
            self.takeovers += 1
            self.sync_of(server_id).start()
            log.info("pool %s: taken over by %s after revision %d", server_id, self.instance, last)
        except Exception:
            # Given up: another instance may take it (the lease is released).
            log.exception("pool %s: takeover failed", server_id)
            asyncio.get_running_loop().create_task(self._give_up(server_id))
            return
        self._notify(server_id, True)

    async def _lost(self, server_id: str) -> None:
        takeover = self._takeovers.pop(server_id, None)
        if takeover is not None:
            takeover.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await takeover
        if server_id in self:
            await self.sync_of(server_id).pause()
        changelog = self._changelogs.get(server_id)
        if changelog is not None:
            await changelog.stop()
        self._notify(server_id, False)

    def _fenced(self, server_id: str) -> None:
        # Another instance published: this lease is gone, whatever this instance believed.
        asyncio.get_running_loop().create_task(self._give_up(server_id))

    async def _give_up(self, server_id: str) -> None:
        await self.leases.release(server_id)
        if server_id in self:
            self.leases.hold(server_id)

    def _notify(self, server_id: str, owned: bool) -> None:
        for callback in list(self.on_ownership):
            try:
                callback(server_id, owned)
            except Exception:
                log.exception("ownership callback failed")

    async def close(self) -> None:
        await self.leases.close()
        await super().close()
