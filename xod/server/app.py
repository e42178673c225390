"""The aiohttp application: `/api/` (JSON-RPC over WebSocket) and the one-shot `/api/<token>`
downloads, around one `Services`. `XodApp` is what the daemon starts and stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson
from aiohttp import WSCloseCode, web

from xod import __version__
from xod.api.dispatch import Dispatcher
from xod.api.errors import ApiError, to_error_object
from xod.api.jobs import commands_of
from xod.api.methods import build_registry
from xod.api.methods.server import connect
from xod.api.services import DEFAULT_FAILOVER_TIMEOUT, Services
from xod.api.views import views_of
from xod.cache.pools import ConnectionFactory, PoolManager
from xod.cache.store import ObjectStore
from xod.cache.sync import BulkLoad
from xod.server.downloads import stream_download
from xod.server.fanout import DEFAULT_NOTIFICATION_FRAME_BYTES, Fanout, FanoutConfig
from xod.server.limits import (
    DEFAULT_ANONYMOUS_BUFFER_BYTES,
    DEFAULT_MAX_CALLS_IN_FLIGHT,
    DEFAULT_OUTPUT_BUFFER_BYTES,
    DaemonLimits,
)
from xod.server.listen import DEFAULT_BACKLOG, Listener, listen
from xod.server.rest.routes import install as install_rest
from xod.server.web import Dashboard
from xod.server.ws import DEFAULT_HEARTBEAT, DEFAULT_WRITE_BUFFER_HIGH, make_api_handler
from xod.store import FirstStartAdmin, SignInThrottle, Store, ensure_admin
from xod.store.first_start import DEFAULT_ADMIN_EMAIL
from xod.xapi.connection import PoolConnection
from xod.xapi.errors import TransportError, XapiError

# XO's invalidParameters: an upload refused for what it holds answers 400.
INVALID_PARAMETERS = 10
UPLOAD_CHUNK = 256 * 1024

log = logging.getLogger("xod.server")

DEFAULT_MAX_INCOMING_MESSAGE_BYTES = 1024 * 1024
# How long a stop waits for cancelled actions to end, and for the pools' logouts.
ACTIONS_STOP_GRACE = 2.0
POOLS_STOP_GRACE = 3.0


@dataclass
class ServerConfig:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    # Largest message a client may send (limits.max_incoming_message_bytes).
    max_incoming_message_bytes: int = DEFAULT_MAX_INCOMING_MESSAGE_BYTES
    max_concurrent_calls: int = 64
    admin_email: str | None = None  # default: $XOD_ADMIN_EMAIL or admin@admin.net
    admin_password: str | None = None  # default: $XOD_ADMIN_PASSWORD or a random one, printed
    connect_timeout: float = 20.0
    disconnect_grace: float = 300.0
    event_timeout: float = 60.0  # event.from's timeout (XAPI answers at the latest then)
    # How a pool connection is made (the daemon's counts its event batches for /metrics).
    connection_factory: ConnectionFactory = PoolConnection
    # Makes the pool manager (a cluster's: xod/cluster/pools.py), with PoolManager's arguments.
    pool_manager: Callable[..., PoolManager] = PoolManager
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
    # Daemon-wide bounds (xod/server/limits.py): an anonymous connection's output budget, all
    # connections' output together, calls in flight.
    anonymous_budget_bytes: int = DEFAULT_ANONYMOUS_BUFFER_BYTES
    output_buffer_bytes: int = DEFAULT_OUTPUT_BUFFER_BYTES
    max_calls_in_flight: int = DEFAULT_MAX_CALLS_IN_FLIGHT
    client_max_lag: float = 30.0
    # Largest `all` notification frame (limits.notification_frame_bytes): bigger batches are
    # split.
    notification_frame_bytes: int = DEFAULT_NOTIFICATION_FRAME_BYTES
    bookmark_interval: float = 30.0
    close_grace: float = 5.0
    ws_heartbeat: float | None = DEFAULT_HEARTBEAT
    ws_write_buffer_high: int = DEFAULT_WRITE_BUFFER_HIGH
    ws_send_buffer: int | None = None  # SO_SNDBUF of client sockets; None = the kernel's
    listen_backlog: int = DEFAULT_BACKLOG
    # Origins of front ends hosted elsewhere that may use the token cookie ([http]
    # allowed_origins, xod/server/web.py); xod's own origin always may.
    allowed_origins: tuple[str, ...] = ()


class XodApp:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.store = config.store or Store.open(config.state_dir)
        self.objects = ObjectStore()
        self.pools = config.pool_manager(
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
                notification_frame_bytes=config.notification_frame_bytes,
            ),
            DaemonLimits(
                output_buffer_bytes=config.output_buffer_bytes,
                anonymous_buffer_bytes=config.anonymous_budget_bytes,
                max_calls=config.max_calls_in_flight,
            ),
            access=self.services.access,
            users=self.store.users.get,
            views=views_of(self.services),
        )
        self.app = web.Application()
        # The dashboard (xod/server/web.py): the page at `/`, its cookie sign-in, the origin rule.
        self.dashboard = Dashboard(self.services, config.allowed_origins)
        self.dashboard.attach(self.app)
        self.app.router.add_get(
            "/api/",
            make_api_handler(
                self.dispatcher,
                lambda: self.config.max_incoming_message_bytes,
                config.max_concurrent_calls,
                fanout=self.fanout,
                write_buffer_high=config.ws_write_buffer_high,
                send_buffer=config.ws_send_buffer,
                close_grace=config.close_grace,
                cookie_sign_in=self.dashboard.sign_in_by_cookie,
            ),
        )
        self.app.router.add_get("/api/{token}", self._one_shot)
        self.app.router.add_post("/api/{token}", self._one_shot_upload)
        install_rest(self.app, self.dispatcher, self.fanout.config, config.ws_send_buffer)
        self._listener: Listener | None = None
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
        max_incoming_message_bytes: int | None = None,
        client_budget_bytes: int | None = None,
        anonymous_budget_bytes: int | None = None,
        output_buffer_bytes: int | None = None,
        max_calls_in_flight: int | None = None,
        client_max_lag: float | None = None,
        connect_timeout: float | None = None,
        disconnect_grace: float | None = None,
        event_timeout: float | None = None,
        notification_frame_bytes: int | None = None,
    ) -> None:
        """Change limits on the running server (the daemon's SIGHUP), without dropping anyone.

        `max_incoming_message_bytes` applies to new connections; the output budgets, the calls
        in flight and the lag to every connection; `connect_timeout` to the next server.add/enable;
        `disconnect_grace` to pools disconnecting from now on; `event_timeout` to the next
        event.from of every pool; `notification_frame_bytes` to the next batch."""
        config = self.config
        if max_incoming_message_bytes is not None:
            config.max_incoming_message_bytes = max_incoming_message_bytes
        if client_budget_bytes is not None:
            config.client_budget_bytes = client_budget_bytes
            self.fanout.set_budget(client_budget_bytes)
        limits = self.fanout.limits
        if anonymous_budget_bytes is not None:
            config.anonymous_budget_bytes = anonymous_budget_bytes
            limits.anonymous_buffer_bytes = anonymous_budget_bytes
        if output_buffer_bytes is not None:
            config.output_buffer_bytes = limits.output_buffer_bytes = output_buffer_bytes
        if max_calls_in_flight is not None:
            config.max_calls_in_flight = limits.max_calls = max_calls_in_flight
        if limits.waiters:
            limits.wake()  # raised limits let waiting readers go on
        if client_max_lag is not None:
            config.client_max_lag = self.fanout.config.max_lag = client_max_lag
        if connect_timeout is not None:
            config.connect_timeout = self.services.connect_timeout = connect_timeout
        if disconnect_grace is not None:
            config.disconnect_grace = self.pools.disconnect_grace = disconnect_grace
        if notification_frame_bytes is not None:
            config.notification_frame_bytes = notification_frame_bytes
            self.fanout.config.notification_frame_bytes = notification_frame_bytes
        if event_timeout is not None:
            config.event_timeout = self.pools.event_timeout = event_timeout
            for server_id in self.pools.server_ids():
                self.pools.sync_of(server_id).event_timeout = event_timeout

    async def start(self) -> None:
        self.first_start()
        self.startup()
        self._listener = await listen(
            self.app, self.config.host, self.config.port, backlog=self.config.listen_backlog
        )
        self.port = self._listener.port

    async def stop(
        self, *, actions_grace: float = ACTIONS_STOP_GRACE, pools_grace: float = POOLS_STOP_GRACE
    ) -> None:
        """Close every client, cancel the actions still running, log out of every pool, close
        the store. Each wait is bounded (a pool that does not answer its logout, an action
        that does not end), and one that runs out says so in the log."""
        await self.fanout.stop()
        # WebSocket handlers only end when their connection does: close them all first.
        self.fanout.close_all(WSCloseCode.GOING_AWAY, "xod is shutting down")
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        # Detached actions outlive their caller, not the daemon: left running, they would keep
        # calling (and retrying) the pools being closed.
        left = await commands_of(self.services).cancel_all(actions_grace)
        if left:
            log.warning("stop: %d action(s) still running after %g s", left, actions_grace)
        # Every pool at once, each logging out of its session; a master that does not answer
        # holds only itself, and only for the grace.
        server_ids = self.pools.server_ids()
        closing = [asyncio.ensure_future(self.pools.remove(s)) for s in server_ids]
        if closing:
            _done, pending = await asyncio.wait(closing, timeout=pools_grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "stop: %d pool(s) not logged out within %g s", len(pending), pools_grace
                )
        self.store.close()

    async def __aenter__(self) -> XodApp:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _one_shot(self, request: web.Request) -> web.StreamResponse:
        """A `$getFrom` download: an error before the first byte is an HTTP error; one after
        it cuts the chunked body short (never a clean end that would look complete)."""
        entry = self.services.oneshot.take(request.match_info["token"])
        if entry is None:
            raise web.HTTPNotFound()
        content_type, stream = entry
        try:
            return await stream_download(request, stream, {"Content-Type": content_type})
        except Exception as error:  # before the first byte: an HTTP error can still say it
            return _error_response(error)

    async def _one_shot_upload(self, request: web.Request) -> web.Response:
        """A `$sendTo` upload: the body streams to the method's receiver; the answer is a
        JSON-RPC response (xo-server's format), an error with a 4xx/5xx status."""
        receiver = self.services.oneshot.take_upload(request.match_info["token"])
        if receiver is None:
            raise web.HTTPNotFound()
        try:
            body = request.content.iter_chunked(UPLOAD_CHUNK)
            result = await receiver(body, request.content_length)
        except Exception as error:
            return _error_response(error)
        return web.json_response({"jsonrpc": "2.0", "id": 0, "result": result}, dumps=_dumps)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _error_response(error: BaseException) -> web.Response:
    """A one-shot transfer's failure as xo-server answers it: a JSON-RPC error object, 400 for
    bad input, 500 otherwise."""
    if not isinstance(error, ApiError | XapiError | TransportError):
        log.exception("one-shot transfer failed", exc_info=error)
    body = {"jsonrpc": "2.0", "id": 0, "error": to_error_object(error, is_admin=False)}
    status = 400 if isinstance(error, ApiError) and error.code == INVALID_PARAMETERS else 500
    return web.json_response(body, status=status, dumps=_dumps)


def create_app(config: ServerConfig) -> XodApp:
    return XodApp(config)
