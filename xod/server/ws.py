"""The `/api/` WebSocket edge: frames in, dispatch, frames out (JSON-RPC 2.0, as xo-server).

Each connection reads frames in order and runs the calls concurrently (at most
`max_concurrent_calls` at once, each entry of a batch counting as one: reading pauses beyond
that, so a flooding client slows itself down; a connection not signed in gets at most
`ANONYMOUS_CONCURRENT_CALLS`, and the daemon bounds the calls of all connections together).
The next frame is read only once the connection's queued output is under its budget
(xod/server/limits.py): a client that does not read its answers stops being read.

Everything outgoing — responses, `all` notifications, subscription changes — goes through the
connection's `Peer` (xod/server/peer.py): written at once when the transport is ready, else
queued under a byte budget, coalesced, and finally the connection closed with 4008 when it
stays behind.

A client opening the socket with the subprotocol `xod.msgpack` gets every message as a msgpack
binary frame, and may send msgpack binary frames (JSON text frames are still understood).

Keepalive: aiohttp's per-connection heartbeat is off; the fan-out's watchdog pings silent
connections in one pass (no timer or task per connection), this session answers the client's
pings and records that the peer is alive on every frame it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from xod.api.context import ApiConnection
from xod.api.dispatch import PARSE_ERROR, Dispatcher
from xod.api.requests import UndecodableFrame, decode_json, decode_msgpack
from xod.server.aiohttp_edge import max_message_size
from xod.server.fanout import Fanout, after_reply
from xod.server.frames import (
    JSON,
    MSGPACK,
    MSGPACK_SUBPROTOCOL,
    SLICED_PAYLOAD,
    WireFormat,
    data_frame,
    frame_slices,
    pong_frame,
)
from xod.server.limits import ANONYMOUS_CONCURRENT_CALLS
from xod.store import User

log = logging.getLogger("xod.server")

TOKEN_EXPIRED_CLOSE_CODE = 4001
DEFAULT_HEARTBEAT = 30.0
DEFAULT_WRITE_BUFFER_HIGH = 64 * 1024


class _ApiWebSocket(web.WebSocketResponse):
    """aiohttp closes an oversized frame with 1009 but no reason: say what the limit is."""

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = f"frame exceeds the {max_message_size(self)}-byte limit".encode()
        return await super().close(code=code, message=message, drain=drain)


class LiveConnection(ApiConnection):
    """A WebSocket connection: signing in starts the `all` notifications (as in XO);
    signing out (also when its user or token is deleted) stops them and every subscription."""

    __slots__ = ("all_enabled", "live")

    def __init__(self, remote: str | None, close: Callable[..., Any], session: WsSession) -> None:
        super().__init__(remote, close, session.dispatcher.services.sessions)
        # What xod's own methods (xod.subscribe…) use; absent on non-WebSocket connections.
        self.live = session
        self.all_enabled = True

    def sign_in(self, user: User, expiration_ms: int | None, token_id: str | None = None) -> None:
        super().sign_in(user, expiration_ms, token_id)
        self.live.peer.signed_in = True  # the larger output budget and call share
        if self.all_enabled:
            self.live.fanout.join_all(self.live.peer)

    def sign_out(self) -> None:
        super().sign_out()
        self.live.peer.signed_in = False
        self.live.fanout.leave_all(self.live.peer)
        self.live.unsubscribe_all()


class WsSession:
    __slots__ = (
        "_calls",
        "_closing",
        "_free_slots",
        "_slot_freed",
        "close_grace",
        "connection",
        "dispatcher",
        "fanout",
        "fmt",
        "max_concurrent_calls",
        "peer",
        "transport",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        dispatcher: Dispatcher,
        remote: str | None,
        *,
        max_concurrent_calls: int,
        transport: asyncio.Transport,
        protocol: Any,
        fanout: Fanout | None = None,
        close_grace: float = 5.0,
    ) -> None:
        self.ws = ws
        self.dispatcher = dispatcher
        self.fanout = fanout or Fanout(dispatcher.services.objects)
        self.fmt: WireFormat = MSGPACK if ws.ws_protocol == MSGPACK_SUBPROTOCOL else JSON
        self.close_grace = close_grace
        self.transport: asyncio.Transport = transport
        self.peer = self.fanout.new_peer(transport, protocol, self.fmt, self._on_peer_failed)
        self.connection = LiveConnection(remote, self._close, self)
        self.max_concurrent_calls = max_concurrent_calls
        # Call slots left (only the reading loop takes them) and, while it waits for some, what
        # it waits on: counted here rather than by a semaphore object per connection.
        self._free_slots = max_concurrent_calls
        self._slot_freed: asyncio.Future[None] | None = None
        # The calls running, made on demand and dropped when empty: most connections are idle.
        self._calls: set[asyncio.Task[None]] | None = None
        self._closing: asyncio.Task[None] | None = None

    # -- xod's own methods ---------------------------------------------------------------------

    def subscribe(self, filter_spec: Any, fields: Any, since: int | None) -> dict[str, Any]:
        return self.fanout.subscribe(self.peer, filter_spec, fields, since)

    def unsubscribe(self, subscription_id: str) -> bool:
        return self.fanout.unsubscribe(self.peer, subscription_id)

    def unsubscribe_all(self) -> None:
        self.fanout.unsubscribe_all(self.peer)

    def set_all(self, enabled: bool) -> bool:
        self.connection.all_enabled = enabled
        if enabled and self.connection.user_id is not None:
            self.fanout.join_all(self.peer)
        elif not enabled:
            self.fanout.leave_all(self.peer)
        return enabled

    # -- output ---------------------------------------------------------------------------------

    def _on_peer_failed(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(
                self.connection.close(code, reason)
            )

    async def _close(self, code: int, reason: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.close_grace
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self.ws.close(code=code, message=reason.encode(), drain=False), self.close_grace
            )
        # The close frame sits behind what a slow peer has not read yet: give it the grace
        # period to take it, then cut the socket (a peer that never reads would keep it forever).
        transport = self.transport
        # asyncio has no "write buffer empty" event: poll (only ever on a closing connection).
        while transport.get_write_buffer_size() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if transport.get_write_buffer_size():
            transport.abort()

    # -- input ----------------------------------------------------------------------------------

    def _decode(self, data: str | bytes) -> Any:
        """The frame as JSON-shaped values (malformed requests already answered)."""
        if isinstance(data, bytes) and self.fmt is MSGPACK:
            return decode_msgpack(data)
        return decode_json(data)

    def _encode(self, message: Any) -> bytes:
        return self.fmt.frame(message)

    def _send_reply(self, payload: bytes) -> None:
        if len(payload) < SLICED_PAYLOAD:
            self.peer.send(data_frame(payload, self.fmt.binary))
        else:  # a big listing: its bytes go out as they are, at the connection's pace
            self.peer.send_stream(frame_slices(payload, self.fmt.binary))

    async def _run_call(self, message: Any, slots: int) -> None:
        hooks: list[Callable[[], None]] = []
        after_reply.set(hooks)
        try:
            reply = await self.dispatcher.handle_message(
                self.connection, message, self.fmt.encode, concurrency=slots
            )
            if reply is not None and not self.connection.closed:
                self._send_reply(reply)
            for hook in hooks:
                hook()
        except Exception:
            log.exception("call handling failed")
        finally:
            self._free_slots += slots
            self.fanout.limits.end_calls(slots)
            waiter = self._slot_freed
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def on_frame(self, message: WSMessage) -> bool:
        """Handle one received frame; False when the connection must end."""
        peer = self.peer
        peer.last_seen = time.monotonic()
        kind = message.type
        if kind is WSMsgType.PING:
            # Answered here (autoping is off so that pongs reach the keepalive).
            peer.send(pong_frame(message.data))
            return True
        if kind is WSMsgType.PONG:
            return True
        if kind not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return False
        if self.connection.expired():
            # xo-server closes without replying on the first message after expiry.
            await self.connection.close(TOKEN_EXPIRED_CLOSE_CODE, "authentication token expired")
            return False
        try:
            decoded = self._decode(message.data)
        except UndecodableFrame:
            peer.send(self._encode(PARSE_ERROR))
            return True
        slots = await self._take_slots(self.dispatcher.call_count(decoded))
        task = asyncio.create_task(self._run_call(decoded, slots))
        if self._calls is None:
            self._calls = set()
        self._calls.add(task)
        task.add_done_callback(self._call_done)
        return True

    async def _take_slots(self, calls: int) -> int:
        """Wait for call slots for `calls` calls (a batch's entries each count), from this
        connection's share and the daemon's (xod/server/limits.py); the slots taken.

        Only this loop takes slots: a batch gets its share before it starts, and the calls it
        waits on free theirs, so no two batches can wait on each other."""
        signed_in = self.peer.signed_in
        limit = self.max_concurrent_calls
        if not signed_in:
            limit = min(limit, ANONYMOUS_CONCURRENT_CALLS)
        slots = min(calls, limit)
        daemon = self.fanout.limits
        while True:
            own_free = self.max_concurrent_calls - self._free_slots + slots <= limit
            if own_free and daemon.calls_available(slots, signed_in):
                break
            waiter = self._slot_freed = asyncio.get_running_loop().create_future()
            if own_free:
                daemon.waiters.add(waiter)
            try:
                await waiter
            finally:
                self._slot_freed = None
                daemon.waiters.discard(waiter)
        self._free_slots -= slots
        daemon.take_calls(slots)
        return slots

    def _call_done(self, task: asyncio.Task[None]) -> None:
        calls = self._calls
        if calls is not None:
            calls.discard(task)
            if not calls:
                self._calls = None

    async def end(self) -> None:
        """The connection is over: stop its calls and release what it held."""
        for task in list(self._calls or ()):
            task.cancel()
        self.connection.dispose()
        self.fanout.remove_peer(self.peer)
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await self._closing
        if self.ws.exception() is not None:
            log.info("websocket closed: %s", self.ws.exception())


def _remote_address(transport: asyncio.BaseTransport) -> str | None:
    """`request.remote` without a proxy in front, read from the transport: the request's own
    property caches its answer in a dict made for it (≈200 bytes per connection)."""
    peername = transport.get_extra_info("peername")
    if peername is None:
        return None
    return str(peername[0]) if isinstance(peername, (list, tuple)) else str(peername)


def make_api_handler(
    dispatcher: Dispatcher,
    max_incoming_message_bytes: Callable[[], int],
    max_concurrent_calls: int,
    *,
    fanout: Fanout | None = None,
    write_buffer_high: int = DEFAULT_WRITE_BUFFER_HIGH,
    send_buffer: int | None = None,
    close_grace: float = 5.0,
    cookie_sign_in: Callable[[web.Request, ApiConnection], Awaitable[None]] | None = None,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def api_websocket(request: web.Request) -> web.StreamResponse:
        # xo-server upgrades only this exact URL: not /api, not /api/?x=1.
        if request.raw_path != "/api/":
            raise web.HTTPNotFound()
        ws = _ApiWebSocket(
            max_msg_size=max_incoming_message_bytes(),  # read per connection: a reload changes it
            compress=False,
            # Keepalive pings come from the fan-out's watchdog (one pass for every connection,
            # no timer per connection); pongs must reach this session to count.
            autoping=False,
            protocols=(MSGPACK_SUBPROTOCOL,),
        )
        if not ws.can_prepare(request).ok:
            raise web.HTTPUpgradeRequired(headers={"Upgrade": "websocket"})
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        # The high-water mark bounds what the kernel side of a slow client may hold.
        transport.set_write_buffer_limits(high=write_buffer_high)
        sock = transport.get_extra_info("socket")
        if send_buffer is not None and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        session = WsSession(
            ws,
            dispatcher,
            _remote_address(transport),
            max_concurrent_calls=max_concurrent_calls,
            fanout=fanout,
            transport=transport,
            protocol=request.protocol,
            close_grace=close_grace,
        )
        if cookie_sign_in is not None:  # a browser page's token cookie (xod/server/web.py)
            await cookie_sign_in(request, session.connection)
        # The reading loop runs in this handler, not in a coroutine of the session's: an idle
        # connection holds one suspended frame less.
        try:
            async for message in ws:
                going_on = await session.on_frame(message)
                del message  # an idle connection keeps nothing of its last frame and call
                if not going_on:
                    break
                # Back-pressure: the next request is read once this connection's output (and,
                # when full, the daemon's) has room; until then it waits in the kernel.
                await session.peer.wait_for_room()
        finally:
            await session.end()
        if not ws.closed:
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(ws.close(code=WSCloseCode.OK), close_grace)
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(close_grace, transport.abort)
        return ws

    return api_websocket
