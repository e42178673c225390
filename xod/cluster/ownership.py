"""Pool ownership: each pool connection is owned by one instance at a time, through a lease in a
JetStream key-value bucket (key: the server id, value: the owner's instance name).

The bucket's entries live `lease_seconds` (its max age): an owner renews its lease every third
of that, each renewal an update that names the revision it read, so two instances can never
both succeed. An owner that dies or is cut off stops renewing; its entry ages out and the next
instance's `create` succeeds. An owner that cannot renew for most of the lease (NATS
unreachable) gives the pool up at once, before its lease could have passed to another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from nats.errors import Error as NatsError
from nats.js import api
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from xod.cluster.nats import ClusterLink

log = logging.getLogger("xod.cluster")

BUCKET = "xod_pool_leases"
# Share of the lease after which an owner that could not renew gives the pool up: the rest is
# the margin against clock drift between it and the NATS server.
GIVE_UP_SHARE = 0.8

Callback = Callable[[str], Awaitable[None]]


class Leases:
    """This instance's leases: `hold(server_id)` competes for one pool, for as long as asked."""

    def __init__(
        self,
        link: ClusterLink,
        instance: str,
        lease_seconds: float,
        on_acquired: Callback,
        on_lost: Callback,
    ) -> None:
        self.link = link
        self.instance = instance
        self.lease_seconds = lease_seconds
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._kv: KeyValue | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # server id → revision of our lease entry, for the pools this instance owns.
        self._owned: dict[str, int] = {}

    async def start(self) -> None:
        try:
            self._kv = await self.link.js.create_key_value(
                api.KeyValueConfig(
                    bucket=BUCKET,
                    history=1,
                    ttl=self.lease_seconds,
                    storage=api.StorageType.FILE,
                )
            )
        except BadRequestError:
            # Created by an instance with another lease_seconds: use it as it is.
            self._kv = await self.link.js.key_value(BUCKET)

    @property
    def kv(self) -> KeyValue:
        assert self._kv is not None, "start() first"
        return self._kv

    def owns(self, server_id: str) -> bool:
        return server_id in self._owned

    def owned(self) -> list[str]:
        return sorted(self._owned)

    async def owner_of(self, server_id: str) -> str | None:
        """The instance holding the pool's lease now (None: nobody)."""
        try:
            entry = await self.kv.get(server_id)
        except KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None

    def hold(self, server_id: str) -> None:
        """Compete for the pool's lease, and keep it renewed once held, until `release`."""
        if server_id not in self._tasks:
            self._tasks[server_id] = asyncio.create_task(
                self._hold(server_id), name=f"lease {server_id}"
            )

    async def release(self, server_id: str) -> None:
        """Stop competing; a held lease is deleted so that another instance takes over now."""
        task = self._tasks.pop(server_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        revision = self._owned.pop(server_id, None)
        if revision is not None:
            await self._on_lost(server_id)
            with contextlib.suppress(NatsError, OSError):
                await self.kv.delete(server_id, last=revision)

    async def close(self) -> None:
        for server_id in list(self._tasks):
            await self.release(server_id)

    async def _hold(self, server_id: str) -> None:
        value = self.instance.encode()
        renewed_at = 0.0
        while True:
            revision = self._owned.get(server_id)
            try:
                if revision is None:
                    revision = await self.kv.create(server_id, value)
                    renewed_at = time.monotonic()
                    self._owned[server_id] = revision
                    log.info("pool %s: lease acquired by %s", server_id, self.instance)
                    await self._on_acquired(server_id)
                else:
                    self._owned[server_id] = await self.kv.update(server_id, value, last=revision)
                    renewed_at = time.monotonic()
            except KeyWrongLastSequenceError:
                if revision is not None and server_id in self._owned:
                    await self._lose(server_id, "taken by another instance")
            except asyncio.CancelledError:
                raise
            except (NatsError, OSError) as error:
                if (
                    server_id in self._owned
                    and time.monotonic() - renewed_at > self.lease_seconds * GIVE_UP_SHARE
                ):
                    await self._lose(server_id, f"not renewed: {error!r}")
            # Owners renew every third of the lease; the others look often for a free one.
            owned = server_id in self._owned
            await asyncio.sleep(self.lease_seconds / (3 if owned else 10))

    async def _lose(self, server_id: str, reason: str) -> None:
        self._owned.pop(server_id, None)
        log.warning("pool %s: lease lost by %s (%s)", server_id, self.instance, reason)
        await self._on_lost(server_id)
