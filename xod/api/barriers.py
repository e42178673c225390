"""Read-your-writes: barriers that wait until the cache shows the writes made on a pool.

An action made of plain calls (xod/api/commands.py) leaves a barrier on the client's
connection (`Commands.leave_barrier`, xod/api/jobs.py): `event.inject` plus the cache's token
passing it, run in the background (`catch_up`). The dispatcher makes every non-action call on
that connection wait for its pending barriers first (`caught_up`), so a read right after a
write shows it, while other connections, `all` and subscription deltas never wait.
"""

from __future__ import annotations

import asyncio
import logging

from xod.api.context import ApiConnection
from xod.cache.sync import PoolSync
from xod.xapi.errors import TransportError

log = logging.getLogger("xod.api.commands")


async def catch_up(sync: PoolSync, timeout: float, method: str) -> None:
    """Wait until the cache has every change made on `sync`'s pool before this call (at most
    `timeout` seconds: the action did happen, only the cache could not confirm it)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await sync.barrier()
                    return
                except TransportError:
                    await asyncio.sleep(0.2)  # the master is moving: inject again
    except TimeoutError:
        log.warning("%s: the cache did not catch up within %g s", method, timeout)


async def caught_up(connection: ApiConnection) -> None:
    """Wait (only if needed) until the cache shows the connection's own writes. Each barrier
    is bounded by `failover_timeout` and never fails, so neither does this."""
    pending = connection.own_writes
    if pending:
        await asyncio.wait(tuple(pending))
