"""The HTTP side of `$getFrom` / `$sendTo` (docs/protocol.md): one-shot URLs on the same server.

A small HTTP/1.1 client on asyncio streams, because all it does is one GET or one POST to the
server it already talks to — and importing aiohttp would double the start-up time of every
`list-objects` (~0.4 s of imports against a few ms of work). Bodies stream in both directions:
Content-Length, chunked, or until the server closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import BinaryIO, TypeVar
from urllib.parse import urlsplit

from xod.cli.errors import CliError, Unreachable
from xod.cli.rpc import http_url, ssl_context

READ_CHUNK = 256 * 1024
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 300.0  # a stalled download fails instead of hanging forever
MAX_HEADER_LINES = 100
_Read = TypeVar("_Read")


class HttpResponse:
    def __init__(self, status: int, reason: str, headers: dict[str, str]) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers


async def _open(
    url: str, allow_unauthorized: bool
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str, str]:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    context: ssl.SSLContext | None = ssl_context(url, allow_unauthorized) if secure else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), CONNECT_TIMEOUT
        )
    except TimeoutError:
        raise Unreachable(f"server unreachable: {url} (timed out)") from None
    except OSError as error:
        raise Unreachable(f"server unreachable: {url} ({error.strerror or error})") from None
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    return reader, writer, target, parts.netloc


async def _read(coroutine: Awaitable[_Read]) -> _Read:
    try:
        return await asyncio.wait_for(coroutine, READ_TIMEOUT)
    except TimeoutError:
        raise Unreachable("transfer stalled: no data for 300 s") from None
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        raise Unreachable(f"transfer interrupted: {error}") from None


async def _read_head(reader: asyncio.StreamReader, url: str) -> HttpResponse:
    status_line = await _read(reader.readline())
    try:
        _protocol, status, reason = status_line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        code = int(status)
    except ValueError:
        raise Unreachable(f"{url}: not an HTTP response") from None
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = (await _read(reader.readline())).decode("latin-1").rstrip("\r\n")
        if not line:
            return HttpResponse(code, reason, headers)
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    raise Unreachable(f"{url}: too many response headers")


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> AsyncIterator[bytes]:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await _read(reader.readline())
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise Unreachable("transfer broken: bad chunk size") from None
            if size == 0:
                return
            yield await _read(reader.readexactly(size))
            await _read(reader.readexactly(2))  # the CRLF after each chunk
    elif "content-length" in headers:
        remaining = int(headers["content-length"])
        while remaining > 0:
            data = await _read(reader.read(min(remaining, READ_CHUNK)))
            if not data:
                raise Unreachable("transfer interrupted: the server closed early")
            remaining -= len(data)
            yield data
    else:
        while data := await _read(reader.read(READ_CHUNK)):
            yield data


def _request_head(method: str, target: str, netloc: str, extra: str = "") -> bytes:
    return (
        f"{method} {target} HTTP/1.1\r\nHost: {netloc}\r\nUser-Agent: xod-cli\r\n"
        f"Accept-Encoding: identity\r\nConnection: close\r\n{extra}\r\n"
    ).encode("latin-1")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, ssl.SSLError):
        pass


@contextlib.asynccontextmanager
async def http_request(
    server: str,
    method: str,
    path: str,
    allow_unauthorized: bool,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> AsyncGenerator[tuple[HttpResponse, AsyncIterator[bytes]], None]:
    """One request to the server: its response head, and its body as chunks arrive."""
    url = http_url(server, path)
    reader, writer, target, netloc = await _open(url, allow_unauthorized)
    try:
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        if body is not None:
            extra += f"Content-Length: {len(body)}\r\n"
        writer.write(_request_head(method, target, netloc, extra) + (body or b""))
        response = await _read_head(reader, url)
        yield response, _body(reader, response.headers)
    finally:
        await _close(writer)


async def get_from(server: str, path: str, allow_unauthorized: bool) -> AsyncGenerator[bytes, None]:
    """The body of a `$getFrom` URL, chunk by chunk as it arrives (close it with aclosing)."""
    async with http_request(server, "GET", path, allow_unauthorized) as (response, body):
        if response.status != 200:
            url = http_url(server, path)
            raise CliError(f"GET {url}: HTTP {response.status} {response.reason}")
        async for chunk in body:
            yield chunk


async def ndjson_lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """Split a byte stream into lines, whatever their length (one object may be large)."""
    rest = b""
    async for chunk in chunks:
        rest += chunk
        if b"\n" not in chunk:
            continue
        *lines, rest = rest.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if rest.strip():
        yield rest


async def send_to(
    server: str,
    path: str,
    file_name: str,
    allow_unauthorized: bool,
    on_progress: Callable[[int, int], None] | None = None,
) -> str:
    """POST a file to a `$sendTo` URL (with its length, as xo-cli does); the response text.
    `on_progress(sent, size)` is called as the bytes go out."""
    url = http_url(server, path)
    try:
        file: BinaryIO = open(file_name, "rb")  # noqa: SIM115, ASYNC230 - read by chunks below
        size = os.fstat(file.fileno()).st_size
    except OSError as error:
        raise CliError(f"cannot read {file_name}: {error.strerror}") from None
    with file:
        reader, writer, target, netloc = await _open(url, allow_unauthorized)
        try:
            head = _request_head(
                "POST",
                target,
                netloc,
                f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n",
            )
            writer.write(head)
            sent = 0
            while data := file.read(READ_CHUNK):
                writer.write(data)
                try:
                    await writer.drain()
                except ConnectionError as error:
                    raise Unreachable(f"upload interrupted: {error}") from None
                sent += len(data)
                if on_progress is not None:
                    on_progress(sent, size)
            response = await _read_head(reader, url)
            body = b"".join([chunk async for chunk in _body(reader, response.headers)])
        finally:
            await _close(writer)
    text = body.decode("utf-8", "replace")
    if response.status >= 400:
        raise CliError(f"POST {url}: HTTP {response.status} {text.strip()}")
    return text
