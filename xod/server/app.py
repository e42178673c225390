"""The aiohttp application: `/api/` (JSON-RPC over WebSocket) and the one-shot `/api/<token>`
downloads, around one `Services`. `XodApp` is what the daemon starts and stops."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aiohttp import WSCloseCode, web

from xod import __version__
from xod.api.context import DEFAULT_FAILOVER_TIMEOUT, Services
from xod.api.dispatch import Dispatcher
from xod.api.methods import build_registry
from xod.api.methods.server import connect
from xod.cache.pools import ConnectionFactory, PoolManager
from xod.cache.store import ObjectStore
from xod.cache.sync import BulkLoad
from xod.server.fanout import DEFAULT_MAX_FRAME_BYTES as DEFAULT_NOTIFICATION_FRAME_BYTES
from xod.server.fanout import Fanout, FanoutConfig
from xod.server.rest.routes import install as install_rest
from xod.server.ws import DEFAULT_HEARTBEAT, DEFAULT_WRITE_BUFFER_HIGH, make_api_handler
from xod.store import FirstStartAdmin, SignInThrottle, Store, ensure_admin
from xod.store.first_start import DEFAULT_ADMIN_EMAIL
from xod.xapi.connection import PoolConnection

log = logging.getLogger("xod.server")

DEFAULT_MAX_FRAME_BYTES = 1024 * 1024


@dataclass
class ServerConfig:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_concurrent_calls: int = 64
    admin_email: str | None = None  # default: $XOD_ADMIN_EMAIL or admin@admin.net
    admin_password: str | None = None  # default: $XOD_ADMIN_PASSWORD or a random one, printed
    connect_timeout: float = 20.0
    disconnect_grace: float = 300.0
    event_timeout: float = 60.0  # event.from's timeout (XAPI answers at the latest then)
    # How a pool connection is made (the daemon's counts its event batches for /metrics).
    connection_factory: ConnectionFactory = PoolConnection
    # Wraps each pool's full-sync load; the daemon passes xod.runtime.bulk_load (xod/cache/sync.py).
    bulk_load: BulkLoad = contextlib.nullcontext
    # Passed to every PoolConnection (timeouts, backoff); tests shorten them.
    connection_options: dict[str, Any] = field(default_factory=dict)
    # How long an action waits for a pool's (new) master before failing (xod/api/commands.py).
    failover_timeout: float = DEFAULT_FAILOVER_TIMEOUT
    version: str = __version__
    store: Store | None = None  # an already-open store (tests pass a fast password hasher)
    # Live changes (xod/server/fanout.py): per-connection bound, lag before 4008, bookmarks.
    client_budget_bytes: int = 4 * 1024 * 1024
    client_max_lag: float = 30.0
    # Largest `all` notification frame (limits.max_frame_bytes): bigger batches are split.
    notification_frame_bytes: int = DEFAULT_NOTIFICATION_FRAME_BYTES
    bookmark_interval: float = 30.0
    close_grace: float = 5.0
    ws_heartbeat: float | None = DEFAULT_HEARTBEAT
    ws_write_buffer_high: int = DEFAULT_WRITE_BUFFER_HIGH
    ws_send_buffer: int | None = None  # SO_SNDBUF of client sockets; None = the kernel's
    # Pending TCP connections: a burst of clients reconnecting after a network blip must not
    # overflow it (an overflow costs each dropped SYN a 1 s retransmit).
    listen_backlog: int = 1024


class XodApp:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.store = config.store or Store.open(config.state_dir)
        self.objects = ObjectStore()
        self.pools = PoolManager(
            self.objects,
            disconnect_grace=config.disconnect_grace,
            event_timeout=config.event_timeout,
            connection_factory=config.connection_factory,
            sync_options={"bulk_load": config.bulk_load},
        )
        self.services = Services(
            store=self.store,
            objects=self.objects,
            pools=self.pools,
            throttle=SignInThrottle(),
            version=config.version,
            connect_timeout=config.connect_timeout,
            connection_options=dict(config.connection_options),
            failover_timeout=config.failover_timeout,
        )
        self.registry = build_registry()
        self.dispatcher = Dispatcher(self.registry, self.services)
        self.fanout = Fanout(
            self.objects,
            FanoutConfig(
                budget_bytes=config.client_budget_bytes,
                max_lag=config.client_max_lag,
                bookmark_interval=config.bookmark_interval,
                ping_interval=config.ws_heartbeat,
                max_frame_bytes=config.notification_frame_bytes,
            ),
        )
        self.app = web.Application()
        self.app.router.add_get(
            "/api/",
            make_api_handler(
                self.dispatcher,
                lambda: self.config.max_frame_bytes,
                config.max_concurrent_calls,
                fanout=self.fanout,
                write_buffer_high=config.ws_write_buffer_high,
                send_buffer=config.ws_send_buffer,
                close_grace=config.close_grace,
            ),
        )
        self.app.router.add_get("/api/{token}", self._one_shot)
        install_rest(self.app, self.dispatcher, self.fanout.config)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def first_start(self, print_to: TextIO | None = sys.stderr) -> FirstStartAdmin | None:
        """Create the first admin if there is no user yet; a generated password is printed once
        to `print_to` (never logged: the operator's only chance to read it), unless None (the
        caller shows it itself)."""
        email = self.config.admin_email or os.environ.get("XOD_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
        password = self.config.admin_password or os.environ.get("XOD_ADMIN_PASSWORD")
        created = ensure_admin(self.store.users, email, password)
        if print_to is not None and created is not None and created.generated_password:
            print(
                f"xod: created admin {email} with password {created.generated_password}",
                file=print_to,
                flush=True,
            )
        return created

    def startup(self) -> None:
        """Everything `start()` does but creating the admin and listening: live changes, and
        connecting the enabled servers. For a caller that listens itself (the daemon)."""
        self.fanout.start()
        for record in self.store.servers.list():
            if record.enabled:
                connect(self.services, record)

    def apply_limits(
        self,
        *,
        max_frame_bytes: int | None = None,
        client_budget_bytes: int | None = None,
        client_max_lag: float | None = None,
        connect_timeout: float | None = None,
        disconnect_grace: float | None = None,
        event_timeout: float | None = None,
        notification_frame_bytes: int | None = None,
    ) -> None:
        """Change limits on the running server (the daemon's SIGHUP), without dropping anyone.

        `max_frame_bytes` (largest incoming frame) applies to new connections; the output budget
        and lag to every connection; `connect_timeout` to the next server.add/enable;
        `disconnect_grace` to pools disconnecting from now on; `event_timeout` to the next
        event.from of every pool; `notification_frame_bytes` to the next batch."""
        config = self.config
        if max_frame_bytes is not None:
            config.max_frame_bytes = max_frame_bytes
        if client_budget_bytes is not None:
            config.client_budget_bytes = client_budget_bytes
            self.fanout.set_budget(client_budget_bytes)
        if client_max_lag is not None:
            config.client_max_lag = self.fanout.config.max_lag = client_max_lag
        if connect_timeout is not None:
            config.connect_timeout = self.services.connect_timeout = connect_timeout
        if disconnect_grace is not None:
            config.disconnect_grace = self.pools.disconnect_grace = disconnect_grace
        if notification_frame_bytes is not None:
            config.notification_frame_bytes = notification_frame_bytes
            self.fanout.config.max_frame_bytes = notification_frame_bytes
        if event_timeout is not None:
            config.event_timeout = self.pools.event_timeout = event_timeout
            for server_id in self.pools.server_ids():
                self.pools.sync_of(server_id).event_timeout = event_timeout

    async def start(self) -> None:
        self.first_start()
        self.startup()
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.config.host, self.config.port, backlog=self.config.listen_backlog
        )
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port

    async def stop(self) -> None:
        await self.fanout.stop()
        # WebSocket handlers only end when their connection does: close them all first.
        self.fanout.close_all(WSCloseCode.GOING_AWAY, "xod is shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.pools.close()
        self.store.close()

    async def __aenter__(self) -> XodApp:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _one_shot(self, request: web.Request) -> web.StreamResponse:
        entry = self.services.oneshot.take(request.match_info["token"])
        if entry is None:
            raise web.HTTPNotFound()
        content_type, stream = entry
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        async for chunk in stream():
            await response.write(chunk)
        await response.write_eof()
        return response


def create_app(config: ServerConfig) -> XodApp:
    return XodApp(config)
