"""The process's one NATS connection (`ClusterLink`): the client, its JetStream context, and
the reconnection policy every cluster module relies on.

Reconnection never gives up: a NATS server that restarts or a network that drops for a while
must not end the daemon; JetStream state (streams, key-value buckets) lives on the server's
disk and the client resumes where it was. Only the first connection is bounded: a daemon
started with an unreachable NATS fails its start instead of serving an empty cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js.client import JetStreamContext
from yarl import URL

log = logging.getLogger("xod.cluster")

# Seconds one connection attempt may take, and the whole first connection.
CONNECT_TIMEOUT = 2.0
FIRST_CONNECT_TIMEOUT = 10.0
# Seconds between two reconnection attempts to the same server.
RECONNECT_WAIT = 0.5
# Seconds a JetStream request (publish ack, KV update, stream info) may take.
REQUEST_TIMEOUT = 5.0


@dataclass(eq=False)
class ClusterLink:
    """One NATS connection and its JetStream context, shared by every cluster module."""

    nc: Client
    js: JetStreamContext
    name: str

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def close(self) -> None:
        """Flush what was published and close (idempotent)."""
        if not self.nc.is_closed:
            await self.nc.drain()


def without_credentials(server: str) -> str:
    """A NATS URL as it may be shown: `nats://user:password@host` has its user and password
    dropped (the message may reach a terminal, not only the redacting logs)."""
    try:  # nats-py reads an address without a scheme as nats://
        return str(URL(server if "://" in server else f"nats://{server}").with_user(None))
    except ValueError:
        return "(an unreadable URL)"


async def connect(servers: list[str], name: str) -> ClusterLink:
    """Connect to the NATS servers `servers` as client `name` (an instance name, shown by
    `nats-server`'s monitoring); reconnects forever once connected."""

    async def disconnected() -> None:
        log.warning("NATS connection lost; reconnecting", extra={"instance": name})

    async def reconnected() -> None:
        log.info("NATS connection back", extra={"instance": name})

    async def error(exception: Exception) -> None:
        log.warning("NATS: %s", exception)

    nc = Client()
    options = dict(
        servers=servers,
        name=name,
        connect_timeout=CONNECT_TIMEOUT,
        reconnect_time_wait=RECONNECT_WAIT,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )
    try:
        # nats-py retries the first connection forever too: bound it here.
        async with asyncio.timeout(FIRST_CONNECT_TIMEOUT):
            await nc.connect(**options)  # type: ignore[arg-type]
    except TimeoutError:
        with contextlib.suppress(Exception):
            await nc.close()
        shown = ", ".join(without_credentials(server) for server in servers)
        raise ConnectionError(
            f"no NATS server of {shown} answered within {FIRST_CONNECT_TIMEOUT} s"
        ) from None
    return ClusterLink(nc, nc.jetstream(timeout=REQUEST_TIMEOUT), name)
