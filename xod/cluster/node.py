"""One instance of a cluster, wired for the daemon (xod/lifecycle.py): the NATS link, the
replica, the pool manager with its leases, action forwarding, and what /readyz and /metrics say
about this instance (its role, the pools it owns, its replica's lag).

Order at start: `connect` (the link), then the application is built with `pool_manager` (the
replica needs its store), then `start` (the replica catches up with the log before any pool is
competed for: a takeover resyncs against a complete replica).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from xod.api.jobs import commands_of
from xod.api.methods.server import connect as connect_server
from xod.api.owners import forwarding_of
from xod.api.services import Services
from xod.cache.pools import PoolManager
from xod.cache.store import ObjectStore
from xod.cluster.changelog import ensure_stream
from xod.cluster.forwarding import Forwarding
from xod.cluster.nats import ClusterLink, connect
from xod.cluster.pools import ClusteredPoolManager
from xod.cluster.replica import Replica
from xod.metrics import REGISTRY

log = logging.getLogger("xod.cluster")

# Seconds the replica may take to apply the log at start.
CATCH_UP_TIMEOUT = 120.0


def default_instance_name() -> str:
    """`<hostname>-<pid>`, with what NATS names do not allow replaced."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{socket.gethostname()}-{os.getpid()}")


class ClusterNode:
    def __init__(
        self, link: ClusterLink, instance: str, lease_seconds: float, log_max_age: float
    ) -> None:
        self.link = link
        self.instance = instance
        self.lease_seconds = lease_seconds
        self.log_max_age = log_max_age
        self.replica: Replica | None = None
        self.pools: ClusteredPoolManager | None = None
        self.forwarding: Forwarding | None = None
        self._collector: _ClusterCollector | None = None

    @classmethod
    async def connect(
        cls, servers: list[str], instance: str, lease_seconds: float, log_max_age: float
    ) -> ClusterNode:
        name = instance or default_instance_name()
        return cls(await connect(servers, name), name, lease_seconds, log_max_age)

    def pool_manager(self, store: ObjectStore, **options: Any) -> PoolManager:
        """`ServerConfig.pool_manager`: the application's pool manager, fed by the replica."""
        self.replica = Replica(self.link, store)
        self.pools = ClusteredPoolManager(
            store,
            link=self.link,
            replica=self.replica,
            instance=self.instance,
            lease_seconds=self.lease_seconds,
            log_max_age=self.log_max_age,
            **options,
        )
        return self.pools

    async def start(self, services: Services) -> None:
        """Before the application connects its servers: the log applied, leases ready,
        actions forwarded."""
        assert self.replica is not None and self.pools is not None, "pool_manager() first"
        await ensure_stream(self.link, self.log_max_age)
        started = time.monotonic()
        await self.replica.start(CATCH_UP_TIMEOUT)
        log.info(
            "replica caught up",
            extra={
                "revision": self.replica.revision,
                "messages": self.replica.messages,
                "changes": self.replica.changes,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        await self.pools.start()
        self.forwarding = Forwarding(self.link, self.pools, commands_of(services))
        forwarding_of(services).forward = self.forwarding.forward
        self._collector = _ClusterCollector(self)
        REGISTRY.register(self._collector)

    def follow_servers(self, services: Services, changes: Iterable[Any]) -> None:
        """Servers added, enabled, disabled or removed on another instance (the shared state's
        changes, xod/cluster/shared_state.py): compete for the new ones, leave the others."""
        pools = self.pools
        assert pools is not None
        for change in changes:
            if change.table != "servers":
                continue
            record = None if change.deleted else services.store.servers.get(change.id)
            if record is not None and record.enabled:
                connect_server(services, record)
            elif change.id in pools:
                asyncio.get_running_loop().create_task(pools.remove(change.id))

    def report(self) -> dict[str, Any]:
        """/readyz's `cluster`: this instance, its pools, and how far its replica is behind."""
        replica, pools = self.replica, self.pools
        assert replica is not None and pools is not None
        owned = pools.leases.owned()
        since = replica.last_applied_at
        return {
            "instance": self.instance,
            "nats": "connected" if self.link.connected else "disconnected",
            "role": "owner" if owned else "replica",
            "owned_pools": owned,
            "revision": replica.revision,
            "replica_lag_messages": replica.pending,
            "seconds_since_last_change": None if since is None else time.monotonic() - since,
            "pools": {
                server_id: {
                    "pool": replica.pool_of_server.get(server_id),
                    "owner": pools.runs_here(server_id),
                    "sync": pools.sync_of(server_id).state,
                    "published": pools.changelog_of(server_id).published,
                    "last_revision": replica.applied.get(server_id),
                    "replica_lag_seconds": replica.lag_seconds.get(server_id),
                }
                for server_id in pools.server_ids()
            },
        }

    def stopping(self) -> None:
        """Before the application stops: its pools are left to the other instances, not
        removed (their objects stay in every replica)."""
        if self.pools is not None:
            self.pools.stopping = True

    async def close(self) -> None:
        """After the application stopped (its pools released their leases)."""
        if self._collector is not None:
            REGISTRY.unregister(self._collector)
            self._collector = None
        if self.forwarding is not None:
            await self.forwarding.close()
        if self.replica is not None:
            await self.replica.stop()
        await self.link.close()


class _ClusterCollector(Collector):
    """The instance's cluster state, read at scrape time."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        report = self.node.report()
        owner = GaugeMetricFamily(
            "xod_cluster_pool_owned",
            "1 if this instance owns the pool connection (syncs it, runs its actions)",
            labels=["instance", "server"],
        )
        last = GaugeMetricFamily(
            "xod_cluster_pool_revision",
            "the revision of the pool's last change applied by this instance's replica",
            labels=["instance", "server"],
        )
        pool_lag = GaugeMetricFamily(
            "xod_cluster_replica_lag_seconds",
            "seconds between the pool's last change's publication and its application here",
            labels=["instance", "server"],
        )
        for server_id, pool in report["pools"].items():
            labels = [self.node.instance, server_id]
            owner.add_metric(labels, 1 if pool["owner"] else 0)
            last.add_metric(labels, pool["last_revision"] or 0)
            pool_lag.add_metric(labels, pool["replica_lag_seconds"] or 0.0)
        yield owner
        yield last
        yield pool_lag
        lag = GaugeMetricFamily(
            "xod_cluster_replica_lag_messages",
            "change log messages not yet applied by this instance's replica",
            labels=["instance"],
        )
        lag.add_metric([self.node.instance], report["replica_lag_messages"])
        yield lag
