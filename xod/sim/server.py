"""The simulator's HTTP side: one aiohttp listener per host (plus the Unix socket), speaking
xapi's RPC transports, with the fault injection a test needs (dropped connections, latency, hangs).

Routing follows xapi's longest-prefix table: paths starting with `/jsonrpc` are JSON-RPC, every
other POST path (`/`, `/RPC2`, XO's `/xmlrpc` …) is XML-RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from xod.sim import wire
from xod.sim.errors import XapiFailure

log = logging.getLogger(__name__)

# xapi refuses RPC bodies beyond this (`Constants.http_limit_max_rpc_size`).
RPC_MAX_BODY = 300 * 1024
# Oversized bodies up to this size are read and discarded before the error answer.
_DRAIN_LIMIT = 16 * 1024 * 1024

_COMMON_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "X-Requested-With",
    "Cache-Control": "no-cache, no-store",
}
_XML_HEADERS = {**_COMMON_HEADERS, "Content-Type": "text/xml"}
# Exactly `application/json`: XO's client falls back to XML-RPC on any other content type.
_JSON_HEADERS = {**_COMMON_HEADERS, "Content-Type": "application/json"}

_ERROR_PAGE = (
    b"<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please"
    b" wait a while and try again. If the problem persists, please contact your support"
    b" representative.</body></html>"
)
_INDEX_PAGE = b"<html><body><h1>xod XAPI simulator</h1></body></html>"


class Faults:
    """Fault injection shared by every listener of a simulator (event loop thread only)."""

    def __init__(self) -> None:
        # One entry per connection still to drop: (method or None for any, after the call ran).
        self._drops: list[tuple[str | None, bool]] = []
        self._latency_default = 0.0
        self._latency: dict[str, float] = {}
        self._hang_gates: dict[str, asyncio.Event] = {}

    def drop_connections(
        self, count: int = 1, method: str | None = None, *, after_call: bool = False
    ) -> None:
        """Close the connection of the next `count` matching calls without an answer: before the
        call reaches the pool, or with `after_call` once it has run (the caller cannot know)."""
        self._drops.extend([(method, after_call)] * count)

    def take_drop(self, method: str, after_call: bool) -> bool:
        """Whether this call's connection is to be dropped now (consumes one matching entry)."""
        for index, (wanted, after) in enumerate(self._drops):
            if after == after_call and (wanted is None or wanted == method):
                del self._drops[index]
                return True
        return False

    def set_latency(self, seconds: float, host_ref: str | None = None) -> None:
        if host_ref is None:
            self._latency_default = seconds
            self._latency.clear()
        else:
            self._latency[host_ref] = seconds

    def latency(self, key: str) -> float:
        return self._latency.get(key, self._latency_default)

    def hang(self, key: str, hanging: bool = True) -> None:
        if hanging:
            self._hang_gates.setdefault(key, asyncio.Event())
        else:
            gate = self._hang_gates.pop(key, None)
            if gate is not None:
                gate.set()

    def hang_gate(self, key: str) -> asyncio.Event | None:
        return self._hang_gates.get(key)


Call = Callable[..., Awaitable[Any]]
# The pool master's other HTTP handlers (xod/sim/http_transfers.py): path -> (method, handler).
HttpRoutes = dict[
    str, tuple[str, Callable[[web.BaseRequest, str, bool], Awaitable[web.StreamResponse]]]
]


# A listener's GET handlers: the response, or None for a path they do not serve.
HttpGet = Callable[[web.BaseRequest], Awaitable[web.StreamResponse | None]]


class RpcListener:
    """One host's RPC endpoint: a TCP address (or the Unix socket) served by aiohttp.

    `stop()` is a crash, not a graceful shutdown: the listening socket closes, open connections
    are reset and calls in progress are abandoned, so clients see what a dead master looks like.
    """

    def __init__(
        self,
        call: Call,
        faults: Faults,
        *,
        host_ref: Callable[[], str],
        fault_key: str,
        local: bool = False,
        http_get: HttpGet | None = None,
        routes: HttpRoutes | None = None,
    ) -> None:
        self._call = call
        # The host's GET handlers (/rrd_updates …); None answers the index page.
        self._http_get = http_get
        self._routes = routes or {}
        self._faults = faults
        self._host_ref = host_ref
        self._fault_key = fault_key
        self._local = local
        self._web: web.Server | None = None
        self._server: asyncio.AbstractServer | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._stopped = asyncio.Event()
        self.unix_path: str | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def _web_server(self) -> web.Server:
        self._stopped = asyncio.Event()
        self._web = web.Server(self._handle, access_log=None)
        return self._web

    async def start_tcp(self, address: str, port: int) -> int:
        """Listen on `address:port`; returns the bound port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._web_server(), host=address, port=port, reuse_address=True
        )
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def start_unix(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a stale socket from an earlier run
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(self._web_server(), path=path)
        self.unix_path = path

    async def stop(self) -> None:
        server, web_server = self._server, self._web
        self._server = None
        if server is None or web_server is None:
            return
        self._stopped.set()
        server.close()
        for connection in web_server.connections:
            if connection.transport is not None:
                connection.transport.abort()
        for task in list(self._in_flight):
            task.cancel()
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=1.0)
        await web_server.shutdown(timeout=0.5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), timeout=0.5)
        if self.unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)

    # -- request handling ------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            route = self._routes.get(request.path.rstrip("/"))
            if route is not None and route[0] == request.method:
                return await route[1](request, self._host_ref(), self._local)
            return await self._handle_rpc(request)
        finally:
            self._in_flight.discard(task)

    async def _handle_rpc(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return web.Response(body=b"", headers=_COMMON_HEADERS)
        if request.method == "GET":
            if self._http_get is not None:
                response = await self._http_get(request)
                if response is not None:
                    return response
            return web.Response(
                body=_INDEX_PAGE, headers={**_COMMON_HEADERS, "Content-Type": "text/html"}
            )
        if request.method != "POST":
            return web.Response(status=404, body=b"", headers=_COMMON_HEADERS)
        length = request.content_length
        if length is None or "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            # xapi: "We require a content-length".
            return _http_500()
        if length > RPC_MAX_BODY:
            if length <= _DRAIN_LIMIT:
                # Swallow the body first, so that the client reads our 500 instead of a reset.
                async for _chunk in request.content.iter_chunked(1 << 16):
                    pass
            return _http_500()
        body = await request.read()

        is_json = request.path.startswith("/jsonrpc")
        json_request: wire.JsonRpcRequest | None = None
        try:
            if is_json:
                json_request = wire.decode_jsonrpc_request(body)
                method, params = json_request.method, json_request.params
            else:
                method, params = wire.decode_xmlrpc_request(body)
        except wire.WireError:
            return _http_500()

        if self._faults.take_drop(method, after_call=False):
            return _abort(request)
        gate = self._faults.hang_gate(self._fault_key)
        if gate is not None:
            await _first_of(gate, self._stopped)
            if self._stopped.is_set() or _closed(request):
                return _abort(request)

        try:
            value = await self._call(method, params, host=self._host_ref(), local=self._local)
            failure = None
        except XapiFailure as exc:
            value, failure = None, exc.description
        except Exception as exc:
            log.exception("simulated call %s failed", method)
            value, failure = None, ["INTERNAL_ERROR", f"{type(exc).__name__}: {exc}"]

        if self._faults.take_drop(method, after_call=True):
            return _abort(request)
        latency = self._faults.latency(self._fault_key)
        if latency > 0:
            await asyncio.sleep(latency)

        if json_request is not None:
            if failure is None:
                payload = wire.encode_jsonrpc_success(json_request, value)
            else:
                payload = wire.encode_jsonrpc_failure(json_request, failure)
            return web.Response(body=payload, headers=_JSON_HEADERS)
        if failure is not None:
            payload = wire.encode_xmlrpc_failure(failure)
        elif method == "system.listMethods":
            payload = wire.encode_xmlrpc_raw(value)  # xapi answers this one without envelope
        else:
            payload = wire.encode_xmlrpc_success(value)
        return web.Response(body=payload, headers=_XML_HEADERS)


def _http_500() -> web.Response:
    return web.Response(
        status=500,
        body=_ERROR_PAGE,
        headers={**_COMMON_HEADERS, "Content-Type": "text/html", "Connection": "close"},
    )


def _closed(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _abort(request: web.BaseRequest) -> web.Response:
    """Reset the connection without answering; aiohttp then fails to write the (empty) response
    and drops it quietly."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(body=b"")


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def bind_host_group(
    listeners: list[tuple[RpcListener, str]], port: int, *, attempts: int = 20
) -> int:
    """Start every `(listener, address)` on one shared port. With port 0 the first listener picks
    a free port and the others must get the same one; if another process holds it on one of the
    other addresses, the whole group retries with a new port."""
    for _ in range(attempts):
        bound = 0
        try:
            chosen = port
            for index, (listener, address) in enumerate(listeners):
                got = await listener.start_tcp(address, chosen)
                if index == 0:
                    chosen = got
                bound += 1
            return chosen
        except OSError as exc:
            for listener, _address in listeners[:bound]:
                await listener.stop()
            if port != 0 or exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"no port free on all {len(listeners)} host addresses")
