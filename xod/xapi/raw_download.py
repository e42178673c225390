"""A download from a pool master over plain HTTP, on a socket of xod's own, so that its body can
pass through xod without entering its memory: xod/server/passthrough.py moves it to the client
with splice(2), or reads it here in chunks when the client's side cannot take a splice (TLS).

Nothing of the body is read before its consumer asks for it: the response head is found by
peeking at the socket, then taken exactly. XAPI ends a download by closing the connection (no
length); a chunked body (the simulator's) and a Content-Length are read as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

from yarl import URL

from xod.xapi.errors import TransportError

HEAD_LIMIT = 64 * 1024
LINE_LIMIT = 1024  # a chunk's size line, extensions included
READ_CHUNK = 256 * 1024
REFUSAL_LIMIT = 2048


class TransferRefused(Exception):
    """The master answered the transfer with an HTTP error instead of starting it."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status}: {reason}")
        self.status = status
        self.reason = reason


async def wait_ready(fd: int, *, write: bool, timeout: float) -> None:
    """Until `fd` is readable (or writable); TimeoutError after `timeout` seconds.

    `fd` must not belong to an asyncio transport (the loop refuses a second watcher on it):
    give an `os.dup` of such a socket's descriptor (as xod/server/passthrough.py does)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        async with asyncio.timeout(timeout):
            await ready
    finally:
        # Before the descriptor may close: epoll forgets a dup only when every copy is closed.
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


def interrupted(reason: str) -> TransportError:
    return TransportError(f"transfer interrupted: {reason}", method="download")


class RawDownload:
    """An answer whose body is still on the socket: `spans()` tells how it comes, `recv` or a
    splice of `fileno()` takes it."""

    def __init__(self, sock: socket.socket, idle_timeout: float) -> None:
        self.sock = sock
        self.idle_timeout = idle_timeout
        self._chunked = False
        self._length: int | None = None

    async def read_head(self) -> int:
        """The answer's status, its framing noted; the body stays on the socket."""
        while True:
            peeked = await self.recv(HEAD_LIMIT, socket.MSG_PEEK)
            end = peeked.find(b"\r\n\r\n")
            if end >= 0:
                break
            if not peeked:
                raise interrupted("the connection closed before an answer")
            if len(peeked) >= HEAD_LIMIT:
                raise interrupted(f"an answer head over {HEAD_LIMIT} bytes")
            await self.wait_readable()
        head = b""
        while len(head) < end + 4:
            head += await self.recv(end + 4 - len(head))
        status_line, *lines = head[:end].decode("latin-1").split("\r\n")
        try:
            status = int(status_line.split()[1])
        except (IndexError, ValueError):
            raise interrupted(f"a bad status line {status_line[:40]!r}") from None
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if length is not None and not self._chunked:
            if not length.isdigit():
                raise interrupted(f"a bad Content-Length {length[:40]!r}")
            self._length = int(length)
        return status

    def fileno(self) -> int:
        return self.sock.fileno()

    async def wait_readable(self) -> None:
        try:
            await wait_ready(self.sock.fileno(), write=False, timeout=self.idle_timeout)
        except TimeoutError:
            raise interrupted(f"nothing received for {self.idle_timeout:g} s") from None

    async def recv(self, size: int, flags: int = 0) -> bytes:
        """Up to `size` bytes once some are there; b"" at the connection's end."""
        while True:
            try:
                return self.sock.recv(size, flags)
            except BlockingIOError:
                await self.wait_readable()
            except OSError as error:
                raise interrupted(str(error)) from None

    async def _line(self) -> bytes:
        """One CRLF-ended line of the chunked framing, taken off the socket."""
        while True:
            peeked = await self.recv(LINE_LIMIT, socket.MSG_PEEK)
            end = peeked.find(b"\r\n")
            if end >= 0:
                return await self.recv(end + 2)
            if not peeked:
                raise interrupted("the connection closed inside the chunked framing")
            if len(peeked) >= LINE_LIMIT:
                raise interrupted("a chunk size line too long")
            await self.wait_readable()

    async def spans(self) -> AsyncIterator[int | None]:
        """How many body bytes come next on the socket, span after span; the framing between
        them is consumed here. A body that ends with the connection is one span of None.
        Each span must be taken whole before the next is asked for."""
        if self._length is not None:
            if self._length:
                yield self._length
            return
        if not self._chunked:
            yield None
            return
        while True:
            line = await self._line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise interrupted(f"a bad chunk size line {line[:40]!r}") from None
            if size == 0:
                while await self._line() != b"\r\n":  # trailers, up to the empty line
                    pass
                return
            yield size
            if await self._line() != b"\r\n":
                raise interrupted("a chunk not followed by CRLF")

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, read into memory (for a client that cannot take a splice)."""
        async for span in self.spans():
            left = span
            while left is None or left > 0:
                data = await self.recv(READ_CHUNK if left is None else min(left, READ_CHUNK))
                if not data:
                    if left is None:
                        break
                    raise interrupted("the connection closed before the body's end")
                if left is not None:
                    left -= len(data)
                yield data

    async def close(self) -> None:
        self.sock.close()


async def _connect(url: URL, unix_socket: str | None) -> socket.socket:
    loop = asyncio.get_running_loop()
    if unix_socket is not None:  # xapi's local socket: the host in the URL only names it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, unix_socket)
        except BaseException:
            sock.close()
            raise
        return sock
    port = url.port or 80
    infos = await loop.getaddrinfo(url.raw_host, port, type=socket.SOCK_STREAM)
    error: OSError | None = None
    for family, kind, proto, _name, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
            return sock
        except OSError as failed:
            sock.close()
            error = failed
        except BaseException:
            sock.close()
            raise
    raise error or OSError(f"no address for {url.raw_host}")


async def open_download(
    url: URL, *, unix_socket: str | None = None, connect_timeout: float, idle_timeout: float
) -> RawDownload:
    """GET `url` (http://, over `unix_socket` when given): the download once the master
    answered 200, else TransferRefused."""
    try:
        async with asyncio.timeout(connect_timeout):
            sock = await _connect(url, unix_socket)
    except (OSError, TimeoutError) as error:
        raise TransportError(f"cannot start the transfer: {error}", method=url.path) from None
    try:
        host = url.raw_host if url.explicit_port is None else f"{url.raw_host}:{url.port}"
        request = f"GET {url.raw_path_qs} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(sock, request.encode("latin-1"))
        except OSError as error:
            raise TransportError(f"cannot start the transfer: {error}", method=url.path) from None
        download = RawDownload(sock, idle_timeout)
        status = await download.read_head()
        if status != 200:
            text = b""
            with contextlib.suppress(TransportError, TimeoutError):
                async with asyncio.timeout(5):
                    text = await download.recv(REFUSAL_LIMIT)
            reason = text.decode("utf-8", "replace").strip() or f"status {status}"
            raise TransferRefused(status, reason)
        return download
    except BaseException:
        sock.close()
        raise
