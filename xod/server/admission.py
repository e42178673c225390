"""Admission control: how many WebSocket clients the daemon takes (limits.max_clients)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web


class ClientLimit:
    """Refuses WebSocket upgrades beyond `max_clients` with 503. The clients are the fan-out's
    connections (`Fanout.peers`, whose length is O(1)): one set of clients, counted, closed on
    shutdown and reported to /metrics from the same place."""

    def __init__(self, connected: Callable[[], int], max_clients: int | None = None) -> None:
        self.connected = connected
        self.max_clients = max_clients  # reloadable: read on every upgrade

    def attach(self, app: web.Application) -> None:
        app.middlewares.append(self._refuse_beyond_limit)

    @web.middleware
    async def _refuse_beyond_limit(self, request: web.Request, handler: Any) -> Any:
        if (
            self.max_clients is not None
            and request.headers.get("Upgrade", "").lower() == "websocket"
            and self.connected() >= self.max_clients
        ):
            raise web.HTTPServiceUnavailable(
                text=f"too many clients (limits.max_clients = {self.max_clients})"
            )
        return await handler(request)
