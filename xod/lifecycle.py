"""The running daemon (`Daemon`): start, reload on SIGHUP, graceful stop, and `--demo`'s
embedded simulated pool. `xod serve`'s command line (xod/daemon.py) builds its settings and runs
it.

Lifecycle: settings (an invalid one: exit 2 before anything starts) → logging → state store →
first admin → [demo pool] → application + /metrics /healthz /readyz → listen → READY=1.
SIGTERM/SIGINT: STOPPING=1, stop listening, close WebSockets with 1001, log out of every XAPI
session, close the store, all within http.shutdown_timeout. SIGHUP: reload the configuration
(log level/format, TLS certificate, limits) without dropping clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, web

from xod import __version__, logs, metrics, runtime
from xod.config import ConfigError, Settings
from xod.notify import Notifier
from xod.server.admission import ClientLimit
from xod.server.health import Observability
from xod.server.instrumented import InstrumentedPoolConnection
from xod.settings import RELOADABLE, parse_listen, parse_origins

if TYPE_CHECKING:
    from xod.cluster.node import ClusterNode
    from xod.cluster.shared_state import SharedState
    from xod.server.app import XodApp
    from xod.server.listen import Listener
    from xod.store import FirstStartAdmin, Store

log = logs.get_logger("xod.daemon")

DEMO_SERVER_LABEL = "xod demo pool"
# Reloadable settings the application applies live: setting → `XodApp.apply_limits` keyword.
# (limits.max_clients is this daemon's own; the log and TLS settings too.)
LIVE_LIMITS = {
    "limits.max_incoming_message_bytes": "max_incoming_message_bytes",
    "limits.notification_frame_bytes": "notification_frame_bytes",
    "limits.client_buffer_bytes": "client_budget_bytes",
    "limits.anonymous_buffer_bytes": "anonymous_budget_bytes",
    "limits.output_buffer_bytes": "output_buffer_bytes",
    "limits.max_calls_in_flight": "max_calls_in_flight",
    "pools.connect_timeout": "connect_timeout",
    "pools.disconnect_grace": "disconnect_grace",
    "pools.event_timeout": "event_timeout",
}


def log_deprecated(settings: Settings) -> None:
    """Old setting names still work for one release: say so where operators look."""
    for message in settings.deprecated:
        log.warning("deprecated setting", detail=message)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    load_certificate(context, settings)
    return context


def load_certificate(context: ssl.SSLContext, settings: Settings) -> None:
    try:
        context.load_cert_chain(settings.tls.cert, settings.tls.key)
    except (ssl.SSLError, OSError) as error:
        raise ConfigError("tls.cert", f"cannot load the certificate and key: {error}") from None


@dataclass
class Listening:
    url: str
    host: str
    port: int


class Daemon:
    def __init__(
        self,
        settings: Settings,
        reload_settings: Callable[[], Settings],
        *,
        demo: bool = False,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.reload_settings = reload_settings
        self.demo = demo
        self.notifier = notifier or Notifier()
        self.ssl_context = tls_context(settings)  # a bad certificate is a config error
        self._stop = asyncio.Event()
        self._reloading: asyncio.Task[None] | None = None
        self._temp_state_dir: str | None = None
        self._simulator: Any = None
        self._app: XodApp | None = None
        self._listener: Listener | None = None
        self._stop_step = "nothing"
        self._observability: Observability | None = None
        self._client_limit = ClientLimit(lambda: 0)
        self._cluster: ClusterNode | None = None
        self._shared_state: SharedState | None = None

    # -- start ---------------------------------------------------------------------------------

    def _state_dir(self) -> Path:
        if self.settings.state.dir:
            return Path(self.settings.state.dir)
        # The demo's default: a fresh directory per run, removed on exit (new credentials, no
        # stale registration of a previous run's simulator).
        self._temp_state_dir = tempfile.mkdtemp(prefix="xod-demo-")
        return Path(self._temp_state_dir)

    async def start(self) -> Listening:
        from xod.server.app import ServerConfig, XodApp

        settings = self.settings
        log_deprecated(settings)
        state_dir = self._state_dir()
        store = await self._open_store(state_dir)
        host, port = parse_listen(settings.http.listen)
        limits, pools = settings.limits, settings.pools
        server_config = ServerConfig(
            state_dir=state_dir,
            host=host,
            port=port,
            max_incoming_message_bytes=limits.max_incoming_message_bytes,
            admin_email=settings.admin.email,
            admin_password=settings.admin.password or None,
            connect_timeout=pools.connect_timeout,
            disconnect_grace=pools.disconnect_grace,
            event_timeout=pools.event_timeout,
            connection_factory=InstrumentedPoolConnection,
            bulk_load=runtime.bulk_load,  # GC off during a pool's load, heap frozen after it
            version=__version__,
            store=store,
            client_budget_bytes=limits.client_buffer_bytes,
            anonymous_budget_bytes=limits.anonymous_buffer_bytes,
            output_buffer_bytes=limits.output_buffer_bytes,
            max_calls_in_flight=limits.max_calls_in_flight,
            notification_frame_bytes=limits.notification_frame_bytes,
            allowed_origins=parse_origins(settings.http.allowed_origins),
        )
        cluster = settings.cluster
        if cluster.nats:  # [cluster]: pools owned by one instance each, replicas through NATS
            from xod.cluster.node import ClusterNode

            self._cluster = await ClusterNode.connect(
                list(cluster.nats), cluster.instance, cluster.lease_seconds, cluster.log_max_age
            )
            server_config.pool_manager = self._cluster.pool_manager
        app = XodApp(server_config)
        self._app = app
        if self._cluster is not None:
            await self._cluster.start(app.services)
            log.info("cluster", instance=self._cluster.instance, nats=list(cluster.nats))
        if self._shared_state is not None:
            from xod.cluster.remote_changes import follow_remote_changes

            self._shared_state.on_remote_change(partial(follow_remote_changes, app.services))
            if self._cluster is not None:  # servers added elsewhere: compete for their pools
                self._shared_state.on_remote_change(
                    partial(self._cluster.follow_servers, app.services)
                )
        # At once: if the start fails later, the password is still known. The demo shows its
        # throwaway password in its banner instead.
        admin = app.first_start(print_to=None)
        if self.demo:
            await self._start_demo_pool(store)
        else:
            self._announce_first_admin(admin, state_dir)
        app.objects.subscribe(metrics.count_cache_batch)
        fanout = app.fanout

        def connected_clients() -> int:
            return len(fanout.peers)

        self._client_limit = ClientLimit(connected_clients, limits.max_clients)
        self._client_limit.attach(app.app)
        app.app.on_shutdown.append(self._close_clients)
        self._observability = Observability(
            app.objects,
            app.pools,
            enabled_servers=lambda: [s.id for s in store.servers.list() if s.enabled],
            fanout=fanout.stats,
            cluster=self._cluster.report if self._cluster is not None else None,
        )
        self._observability.register()
        app.app.router.add_routes(self._observability.routes())
        app.startup()  # the daemon listens itself: TLS, the redacting access log, port fallback
        listening = await self._listen(app, host, port)
        log.debug("effective settings", settings=settings.values)  # secrets redacted by name
        log.info(
            "listening",
            url=listening.url,
            tls=self.ssl_context is not None,
            state_dir=str(state_dir),
            config=str(settings.path) if settings.path else None,
        )
        self._announce(listening, admin, state_dir)
        return listening

    async def _open_store(self, state_dir: Path) -> Store:
        """The state directory's SQLite file; in a cluster ([cluster] nats), the local mirror of
        the shared bucket (xod/cluster/shared_state.py)."""
        from xod.store import Store

        cluster = self.settings.cluster
        if not cluster.nats:
            return Store.open(state_dir)
        from xod.cluster.node import default_instance_name
        from xod.cluster.shared_state import SharedState

        self._shared_state = SharedState(
            list(cluster.nats),
            cluster.instance or default_instance_name(),
            replicas=cluster.state_replicas,
        )
        return await self._shared_state.open_store(state_dir)

    async def _close_clients(self, _app: web.Application) -> None:
        # on_shutdown runs once the server stopped listening: every WebSocket gets 1001 (going
        # away) and its handler ends after the close handshake (bounded by the runner's grace).
        if self._app is not None:
            self._app.fanout.close_all(WSCloseCode.GOING_AWAY, "server shutting down")

    async def _start_demo_pool(self, store: Any) -> None:
        from xod.sim.pool import SimConfig
        from xod.sim.simulator import Simulator

        demo = self.settings.demo
        sim = Simulator(SimConfig(hosts=demo.hosts, vms=demo.vms), listen=demo.address, port=0)
        await sim.start()
        self._simulator = sim
        if demo.churn > 0:
            await sim.pool.start_churn(demo.churn)
        username, password = sim.pool.config.username, sim.pool.config.password
        existing = [s for s in store.servers.list() if s.label == DEMO_SERVER_LABEL]
        if existing:  # a persistent demo state dir: point the old registration at this pool
            store.servers.update(existing[0].id, host=sim.master_url, password=password)
        else:
            store.servers.add(sim.master_url, username, password, label=DEMO_SERVER_LABEL)
        log.info("demo pool started", master=sim.master_url, hosts=demo.hosts, vms=demo.vms)

    async def _listen(self, app: XodApp, host: str, port: int) -> Listening:
        from xod.server.listen import listen

        self._listener = await listen(
            app.app,
            host,
            port,
            ssl_context=self.ssl_context,
            backlog=app.config.listen_backlog,
            # In-flight requests' grace once WebSockets are closed; the whole stop is bounded
            # by http.shutdown_timeout.
            shutdown_grace=min(3.0, self.settings.http.shutdown_timeout / 5),
            # The demo's 8080 may be taken: then any free port.
            any_port_if_taken=self.demo and "http.listen" not in self.settings.explicit,
            access_log_class=logs.RedactingAccessLogger,
        )
        scheme = "https" if self.ssl_context else "http"
        shown = f"[{host}]" if ":" in host else host
        return Listening(f"{scheme}://{shown}:{self._listener.port}", host, self._listener.port)

    def _announce_first_admin(self, admin: FirstStartAdmin | None, state_dir: Path) -> None:
        """A generated password goes to a 0600 file, never to stdout or the logs: under systemd
        both end in the journal. Only the file's path is shown."""
        from xod.store.first_start import write_password_file

        if admin is None or not admin.generated_password:
            return
        path = write_password_file(state_dir, admin.generated_password)
        print(
            f"xod: created admin {admin.user.email}; its generated password is in {path}"
            " (readable by xod's user only; delete the file once read)",
            flush=True,
        )
        log.info("first admin created", email=admin.user.email, file=str(path))

    def _announce(self, listening: Listening, admin: Any, state_dir: Path) -> None:
        """Credentials go to stdout, once, never to the logs."""
        if not self.demo:
            return
        password = admin.generated_password if admin is not None else None
        ws_url = listening.url.replace("http", "ws", 1) + "/api/"
        demo = self.settings.demo
        if admin is None:
            credentials = "  (users already exist in this state directory)"
        else:
            shown = password or "(admin.password from the configuration)"
            credentials = f"  user:      {admin.user.email}\n  password:  {shown}"
        where = f"{state_dir} (deleted on exit)" if self._temp_state_dir else str(state_dir)
        print(
            "xod demo is running\n"
            f"  URL:       {listening.url}\n"
            f"  dashboard: {listening.url}/\n"
            f"  API:       {ws_url}\n"
            f"{credentials}\n"
            f"  pool:      {demo.hosts} simulated hosts at {self._simulator.master_url},"
            f" {demo.vms} VMs, {demo.churn:g} changes/s\n"
            f"  state:     {where}\n"
            "Stop with Ctrl+C.",
            flush=True,
        )

    # -- run -----------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._schedule_reload)
        try:
            listening = await self.start()
        except BaseException:
            await self.stop(quiet=True)
            raise
        self.notifier.ready(status=f"serving on {listening.url}")
        watchdog = self._start_watchdog()
        await self._stop.wait()
        if watchdog is not None:
            watchdog.cancel()
        await self.stop()
        return 0

    def _start_watchdog(self) -> asyncio.Task[None] | None:
        seconds = self.notifier.watchdog_seconds
        if seconds is None:
            return None

        async def ping() -> None:
            # Half the interval, as sd_watchdog_enabled(3) recommends: a blocked loop stops it.
            while True:
                self.notifier.watchdog()
                await asyncio.sleep(seconds / 2)

        return asyncio.create_task(ping(), name="watchdog")

    async def stop(self, *, quiet: bool = False) -> None:
        if not quiet:
            self.notifier.stopping()
            log.info("stopping")
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.http.shutdown_timeout):
                await self._graceful_stop()
        except TimeoutError:
            log.warning(
                "graceful stop timed out",
                timeout=self.settings.http.shutdown_timeout,
                waiting_for=self._stop_step,
            )
        finally:
            if self._app is not None:
                with contextlib.suppress(Exception):
                    self._app.store.close()
            if self._shared_state is not None:
                await self._shared_state.close()
            if self._observability is not None:
                self._observability.unregister()
            if self._temp_state_dir:
                shutil.rmtree(self._temp_state_dir, ignore_errors=True)
        if not quiet:
            log.info("stopped", seconds=round(time.monotonic() - started, 3))

    async def _graceful_stop(self) -> None:
        """Each step bounded by its share of http.shutdown_timeout (`_stop_step` says which
        one runs, for the log if the whole stop runs out anyway)."""
        timeout = self.settings.http.shutdown_timeout
        if self._reloading is not None:
            self._reloading.cancel()
        if self._listener is not None:
            # Stops listening, then on_shutdown closes every WebSocket with 1001; handlers get
            # the listener's grace (twice: to end, then once cancelled).
            self._stop_step = "clients to disconnect"
            await self._listener.close()
            self._listener = None
        if self._app is not None:
            self._stop_step = "actions to end and pools to log out"
            if self._cluster is not None:
                self._cluster.stopping()  # its pools go to other instances, objects kept
            # Logs out of every XAPI session, closes the store.
            await self._app.stop(actions_grace=timeout / 5, pools_grace=timeout / 5)
        if self._cluster is not None:
            self._stop_step = "the cluster link to close"
            await self._cluster.close()
            self._cluster = None
        if self._simulator is not None:
            self._stop_step = "the demo pool to stop"
            await self._simulator.stop()
            self._simulator = None
        self._stop_step = "nothing"

    # -- reload --------------------------------------------------------------------------------

    def _schedule_reload(self) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.create_task(self.reload(), name="reload")

    async def reload(self) -> None:
        self.notifier.reloading()
        try:
            new = self.reload_settings()
            if new.tls_enabled and self.ssl_context is not None:
                load_certificate(self.ssl_context, new)  # new handshakes use it
        except ConfigError as error:
            metrics.CONFIG_RELOADS.labels("invalid").inc()
            log.error("reload failed, configuration unchanged", error=str(error))
            self.notifier.ready(status="reload failed: configuration invalid")
            return
        log_deprecated(new)
        changed = self.settings.changed(new)
        if "log.level" in changed or "log.format" in changed:
            logs.setup(new.log.level, new.log.format)
        restart_needed = [n for n in changed if n not in RELOADABLE]
        if (new.tls_enabled) != (self.ssl_context is not None):
            restart_needed.append("tls")
        self._client_limit.max_clients = new.limits.max_clients  # enforced by this daemon
        if self._app is not None:
            self._app.apply_limits(
                **{LIVE_LIMITS[n]: new.values[n] for n in changed if n in LIVE_LIMITS}
            )
        self.settings = new
        metrics.CONFIG_RELOADS.labels("applied").inc()
        log.info("configuration reloaded", changed=changed, restart_needed=restart_needed)
        log.debug("effective settings", settings=new.values)  # secrets redacted by name
        self.notifier.ready(status="configuration reloaded")
