"""The unauthenticated operational endpoints: /healthz (the process answers), /readyz (every
enabled server's pool is synced) and /metrics (xod/metrics.py's registry, with the cache and
pool state read at scrape time)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from xod.cache.pools import PoolManager
from xod.cache.store import ObjectStore
from xod.metrics import REGISTRY, StateCollector


class Observability:
    """The three unauthenticated operational endpoints, as aiohttp handlers."""

    def __init__(
        self,
        objects: ObjectStore,
        pools: PoolManager,
        enabled_servers: Callable[[], Iterable[str]] | None = None,
        fanout: Callable[[], Mapping[str, int]] | None = None,  # the fan-out's stats()
        cluster: Callable[[], dict[str, Any]] | None = None,  # this instance's role in a cluster
    ) -> None:
        self.pools = pools
        self.cluster = cluster
        # The ids of the servers that should be connected (the store's enabled servers); a
        # server enabled but absent from the manager is not ready.
        self.enabled_servers = enabled_servers
        self.collector = StateCollector(objects, pools, fanout)
        self._registered = False

    def register(self) -> None:
        if not self._registered:
            REGISTRY.register(self.collector)
            self._registered = True

    def unregister(self) -> None:
        if self._registered:
            REGISTRY.unregister(self.collector)
            self._registered = False

    def readiness(self) -> tuple[bool, list[dict[str, Any]]]:
        statuses = {s.server_id: s for s in self.pools.statuses()}
        wanted = list(self.enabled_servers()) if self.enabled_servers else list(statuses)
        pools = []
        for server_id in wanted:
            status = statuses.get(server_id)
            pools.append(
                {
                    "server": server_id,
                    "status": status.status if status else "disconnected",
                    "synced": bool(status and status.synced),
                }
            )
        return all(p["synced"] for p in pools), pools

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    async def readyz(self, _request: web.Request) -> web.Response:
        ready, pools = self.readiness()
        report: dict[str, Any] = {"ready": ready, "pools": pools}
        if self.cluster is not None:
            report["cluster"] = self.cluster()
        body = orjson.dumps(report)
        return web.Response(
            body=body, status=200 if ready else 503, content_type="application/json"
        )

    async def metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(REGISTRY))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
        ]
