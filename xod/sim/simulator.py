"""`Simulator`: a simulated XAPI pool (`SimPool`) served over real sockets, one listener per host,
with the controls tests use to break it (crash a host, hang it, drop connections, add latency)."""

from __future__ import annotations

import dataclasses
import ipaddress
from types import TracebackType

from xod.sim.http_transfers import Transfers
from xod.sim.pool import SimConfig, SimPool
from xod.sim.rrd_http import handle_get
from xod.sim.server import Faults, RpcListener, bind_host_group


def host_addresses(listen: str, count: int) -> list[str]:
    """Host i listens on `listen` + i (127.0.0.1, 127.0.0.2, …), so the hosts of one pool share a
    port and a client following HOST_IS_SLAVE only swaps the address, as XO does."""
    try:
        first = ipaddress.IPv4Address(listen)
    except ValueError as exc:
        if count == 1:
            return [listen]
        raise ValueError(
            f"listen must be an IPv4 address for a {count}-host pool: {listen}"
        ) from exc
    if int(first) + count - 1 > int(ipaddress.IPv4Address("255.255.255.255")):
        raise ValueError(f"not enough addresses after {listen} for {count} hosts")
    return [str(first + i) for i in range(count)]


class Simulator:
    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        listen: str = "127.0.0.1",
        port: int = 0,
        unix_path: str | None = None,
        http_port: int | None = None,
    ) -> None:
        """`http_port`: also serve every host on this port of its own address (80, as a real
        host does, so that a client building `http://<host address>/rrd_updates` from a host's
        address reaches it); binding port 80 needs privileges, so it is off unless asked."""
        config = config or SimConfig()
        if config.host_addresses is None:
            config = dataclasses.replace(
                config, host_addresses=host_addresses(listen, config.hosts)
            )
        self.pool = SimPool(config)
        self.port = port
        self.unix_path = unix_path
        self._faults = Faults()
        self._listeners: dict[str, RpcListener] = {}
        self._unix_listener: RpcListener | None = None
        self.http_port = http_port
        self._http_listeners: list[RpcListener] = []
        self._routes = Transfers(self.pool).routes()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        group = []
        for host_ref in self.pool.host_refs:
            listener = self._listeners.setdefault(host_ref, self._tcp_listener(host_ref))
            group.append((listener, self.pool.address_of(host_ref)))
        try:
            self.port = await bind_host_group(group, self.port)
            if self.http_port is not None:
                for host_ref in self.pool.host_refs:
                    listener = self._tcp_listener(host_ref)
                    self._http_listeners.append(listener)
                    await listener.start_tcp(self.pool.address_of(host_ref), self.http_port)
            if self.unix_path is not None:
                self._unix_listener = RpcListener(
                    self.pool.call,
                    self._faults,
                    host_ref=lambda: self.pool.master,
                    fault_key="unix",
                    local=True,
                    http_get=lambda request: handle_get(self.pool, self.pool.master, request),
                    routes=self._routes,
                )
                await self._unix_listener.start_unix(self.unix_path)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for listener in [*self._listeners.values(), *self._http_listeners]:
            await listener.stop()
        self._http_listeners.clear()
        if self._unix_listener is not None:
            await self._unix_listener.stop()
            self._unix_listener = None
        await self.pool.close()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _tcp_listener(self, host_ref: str) -> RpcListener:
        return RpcListener(
            self.pool.call,
            self._faults,
            host_ref=lambda: host_ref,
            fault_key=host_ref,
            http_get=lambda request: handle_get(self.pool, host_ref, request),
            routes=self._routes,
        )

    # -- addresses -------------------------------------------------------------------------------

    def url_of(self, host_ref: str) -> str:
        return f"http://{self.pool.address_of(host_ref)}:{self.port}"

    @property
    def master_url(self) -> str:
        return self.url_of(self.pool.master)

    @property
    def urls(self) -> list[str]:
        return [self.url_of(ref) for ref in self.pool.host_refs]

    # -- faults ----------------------------------------------------------------------------------

    async def stop_host(self, host_ref: str) -> None:
        """Crash the host's listener: connections reset, new ones refused."""
        await self._listeners[host_ref].stop()

    async def start_host(self, host_ref: str) -> None:
        listener = self._listeners[host_ref]
        if not listener.running:
            await listener.start_tcp(self.pool.address_of(host_ref), self.port)

    def promote(self, host_ref: str) -> None:
        self.pool.designate_new_master(host_ref)

    def invalidate_sessions(self) -> None:
        self.pool.invalidate_sessions()

    def drop_connections(
        self, count: int = 1, method: str | None = None, *, after_call: bool = False
    ) -> None:
        """The next `count` calls (of `method`, if given) get their connection reset unanswered:
        before they reach the pool, or with `after_call` once they have run (a master dying
        mid-call: the caller cannot know the outcome)."""
        self._faults.drop_connections(count, method, after_call=after_call)

    def set_latency(self, seconds: float, host_ref: str | None = None) -> None:
        """Delay every answer (of one host, or of all when host_ref is None)."""
        self._faults.set_latency(seconds, host_ref)

    def hang(self, host_ref: str, hanging: bool = True) -> None:
        """The host accepts connections and reads requests but answers none until released."""
        self._faults.hang(host_ref, hanging)
