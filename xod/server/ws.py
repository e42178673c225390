"""The `/api/` WebSocket edge: frames in, dispatch, frames out (xo-jsonrpc §1).

Each connection reads frames in order and runs the calls concurrently (at most
`max_concurrent_calls` at once: reading pauses beyond that, so a flooding client slows itself
down), and writes every outgoing frame through one bounded outbox drained by one writer task —
where `all` notifications will also be queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from xod.api.context import ApiConnection
from xod.api.dispatch import Dispatcher

log = logging.getLogger("xod.server")

TOKEN_EXPIRED_CLOSE_CODE = 4001


class _ApiWebSocket(web.WebSocketResponse):
    """aiohttp closes an oversized frame with 1009 but no reason: say what the limit is."""

    def __init__(self, *, max_msg_size: int, **options: Any) -> None:
        super().__init__(max_msg_size=max_msg_size, **options)
        self._limit_reason = f"frame exceeds the {max_msg_size}-byte limit".encode()

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = self._limit_reason
        return await super().close(code=code, message=message, drain=drain)


class WsSession:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        dispatcher: Dispatcher,
        remote: str | None,
        *,
        max_concurrent_calls: int,
        outbox_size: int = 256,
    ) -> None:
        self.ws = ws
        self.dispatcher = dispatcher
        self.connection = ApiConnection(remote, self._close)
        self._slots = asyncio.Semaphore(max_concurrent_calls)
        self._calls: set[asyncio.Task[None]] = set()
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue(outbox_size)

    async def _close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())

    async def send(self, frame: bytes) -> None:
        """Queue one text frame (bytes of UTF-8 JSON); waits while the outbox is full."""
        await self._outbox.put(frame)

    async def _writer(self) -> None:
        ws = self.ws
        while True:
            frame = await self._outbox.get()
            if frame is None or ws.closed:
                return
            try:
                await ws.send_frame(frame, WSMsgType.TEXT)
            except (ConnectionError, RuntimeError):
                return

    async def _run_call(self, data: str | bytes) -> None:
        try:
            reply = await self.dispatcher.handle_frame(self.connection, data)
            if reply is not None and not self.connection.closed:
                await self.send(reply)
        except Exception:
            log.exception("call handling failed")
        finally:
            self._slots.release()

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer())
        try:
            async for message in self.ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                if self.connection.expired():
                    # xo-server closes without replying on the first message after expiry.
                    await self.connection.close(
                        TOKEN_EXPIRED_CLOSE_CODE, "authentication token expired"
                    )
                    break
                await self._slots.acquire()
                task = asyncio.create_task(self._run_call(message.data))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)
        finally:
            for task in list(self._calls):
                task.cancel()
            self.connection.dispose()
            with contextlib.suppress(asyncio.QueueFull):
                self._outbox.put_nowait(None)
            if self._outbox.full():
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            if self.ws.exception() is not None:
                log.info("websocket closed: %s", self.ws.exception())


def make_api_handler(dispatcher: Dispatcher, max_frame_bytes: int, max_concurrent_calls: int):
    async def api_websocket(request: web.Request) -> web.StreamResponse:
        # xo-server upgrades only this exact URL: not /api, not /api/?x=1.
        if request.raw_path != "/api/":
            raise web.HTTPNotFound()
        ws = _ApiWebSocket(max_msg_size=max_frame_bytes, compress=False)
        if not ws.can_prepare(request).ok:
            raise web.HTTPUpgradeRequired(headers={"Upgrade": "websocket"})
        await ws.prepare(request)
        session = WsSession(
            ws, dispatcher, request.remote, max_concurrent_calls=max_concurrent_calls
        )
        await session.run()
        if not ws.closed:
            await ws.close(code=WSCloseCode.OK)
        return ws

    return api_websocket
