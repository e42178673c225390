"""A JSON-RPC client over one WebSocket (`websockets` asyncio client), as xo-lib speaks it.

Replies are matched to calls by id (xod, like xo-server, may answer out of order); notifications
(`all`, `xod.changes`) go to a bounded queue, but only while someone listens: a plain method call
must not stall behind a million `all` messages nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from xod.cli.errors import CliError, ExitCode, RpcError, Unreachable, UsageError

# xod's close code for "authentication token expired" (xod/server/ws.py).
TOKEN_EXPIRED_CLOSE_CODE = 4001
NOTIFICATION_QUEUE_SIZE = 10_000

_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def _split(server: str) -> tuple[str, str, str]:
    """(scheme, netloc, path) of a server URL; no scheme means https, as xo-lib assumes."""
    text = server.strip()
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in _WS_SCHEMES or not parts.netloc:
        raise UsageError(f"invalid server URL: {server!r} (expected http(s)://host[:port])")
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


def api_url(server: str) -> str:
    """xo-lib's rule: trim trailing slashes, http→ws, https→wss, append `/api/`."""
    scheme, netloc, path = _split(server)
    return urlunsplit((_WS_SCHEMES[scheme], netloc, f"{path}/api/", "", ""))


def http_url(server: str, target: str) -> str:
    """Where a `$getFrom`/`$sendTo` path lives: resolved against the server's HTTP origin."""
    if "://" in target:
        return target
    scheme, netloc, path = _split(server)
    if not target.startswith("/"):
        target = f"{path}/{target}"
    return urlunsplit((_HTTP_SCHEMES[scheme], netloc, target, "", ""))


def ssl_context(url: str, allow_unauthorized: bool) -> ssl.SSLContext | None:
    if not url.startswith(("wss:", "https:")):
        return None
    context = ssl.create_default_context()
    if allow_unauthorized:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class RpcConnection:
    def __init__(self, ws: ClientConnection, url: str) -> None:
        self.ws = ws
        self.url = url
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._notifications: asyncio.Queue[dict[str, Any] | None] | None = None
        self.lost: CliError | None = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls, server: str, *, allow_unauthorized: bool = False, open_timeout: float = 10.0
    ) -> RpcConnection:
        url = api_url(server)
        try:
            ws = await connect(
                url,
                ssl=ssl_context(url, allow_unauthorized),
                open_timeout=open_timeout,
                max_size=None,  # getAllObjects of a big pool is tens of MB in one frame
                compression="deflate",
                ping_interval=20,
                ping_timeout=20,
            )
        except InvalidURI:
            raise UsageError(f"invalid server URL: {server!r}") from None
        except InvalidStatus as error:
            status = error.response.status_code
            raise Unreachable(f"{url} is not a xod API endpoint (HTTP {status})") from None
        except ssl.SSLCertVerificationError as error:
            raise Unreachable(
                f"cannot verify the certificate of {url}: {error.verify_message}"
                " (use --allow-unauthorized to accept it)"
            ) from None
        except TimeoutError:
            raise Unreachable(f"server unreachable: {url} (timed out)") from None
        except OSError as error:
            reason = error.strerror or str(error) or type(error).__name__
            raise Unreachable(f"server unreachable: {url} ({reason})") from None
        except InvalidHandshake as error:
            raise Unreachable(f"server unreachable: {url} ({error})") from None
        return cls(ws, url)

    # -- reading -----------------------------------------------------------------------------

    def _connection_lost(self, error: ConnectionClosed | None) -> CliError:
        close = error.rcvd if error is not None else None
        if close is not None and close.code == TOKEN_EXPIRED_CLOSE_CODE:
            return CliError(
                "the registered token has expired: run `xod-cli register` again",
                ExitCode.TOKEN_REJECTED,
            )
        reason = f": {close.reason}" if close is not None and close.reason else ""
        return Unreachable(f"connection to {self.url} lost{reason}")

    async def _read(self) -> None:
        lost: ConnectionClosed | None = None
        try:
            async for frame in self.ws:
                try:
                    message = orjson.loads(frame)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(message, dict):
                    continue
                if "method" in message:
                    if self._notifications is not None:
                        await self._notifications.put(message)
                    continue
                entry = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]  # None finds none
                if entry is None:
                    continue
                method, future = entry
                if future.done():
                    continue
                if "error" in message:
                    error = message["error"]
                    future.set_exception(
                        RpcError(method, error if isinstance(error, dict) else {"message": error})
                    )
                else:
                    future.set_result(message.get("result"))
        except ConnectionClosed as error:
            lost = error
        finally:
            self.lost = self._connection_lost(lost)
            for _method, future in self._pending.values():
                if not future.done():
                    future.set_exception(self.lost)
            self._pending.clear()
            queue = self._notifications
            if queue is not None:
                if queue.full():
                    queue.get_nowait()  # the end-of-stream marker matters more than one item
                queue.put_nowait(None)

    # -- calling -----------------------------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        if self.lost is not None:
            raise self.lost
        request_id = next(self._ids)
        message: dict[str, Any] = {"id": request_id, "jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (method, future)
        try:
            await self.ws.send(orjson.dumps(message).decode())
        except ConnectionClosed as error:
            self._pending.pop(request_id, None)
            raise self._connection_lost(error) from None
        return await future

    def listen(self) -> None:
        """Start keeping notifications (call before the request that makes them flow)."""
        if self._notifications is None:
            self._notifications = asyncio.Queue(NOTIFICATION_QUEUE_SIZE)

    async def notifications(self) -> AsyncIterator[dict[str, Any]]:
        """Every notification from now on; ends by raising why the connection was lost."""
        self.listen()
        assert self._notifications is not None
        while True:
            message = await self._notifications.get()
            if message is None:
                raise self.lost or Unreachable(f"connection to {self.url} lost")
            yield message

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    async def __aenter__(self) -> RpcConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
