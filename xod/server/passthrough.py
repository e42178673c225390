"""A pool master's download body moved to the client with splice(2): socket → pipe → socket,
in the kernel. The bytes never enter xod's memory, and xod spends no Python per byte: an export
through xod costs a fraction of the CPU a copy costs, which on a busy host is the difference
between keeping up with the master and halving its speed.

Only between two plain sockets: a body from a TLS master arrives as chunks (xod/xapi/transfers.py),
and a TLS client is written chunks read off the master's socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from aiohttp import web

from xod.xapi.raw_download import RawDownload, interrupted, wait_ready

PIPE_SIZE = 1 << 20  # the default cap of /proc/sys/fs/pipe-max-size
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)


def can_splice(request: web.Request) -> bool:
    """Whether the client's side is a plain socket a splice can write to."""
    transport = request.transport
    return (
        hasattr(os, "splice")
        and transport is not None
        and transport.get_extra_info("sslcontext") is None
        and transport.get_extra_info("socket") is not None
    )


class _Splicer:
    """One body's way to one client: the pipe between them, the client's descriptor (a dup:
    the loop lets only the transport watch the original) and the chunked framing to add."""

    def __init__(self, body: RawDownload, client_fd: int, framed: bool, timeout: float) -> None:
        self.body = body
        self.framed = framed
        self.timeout = timeout
        self.pending_crlf = False
        self.pipe_out, self.pipe_in = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            with contextlib.suppress(OSError):  # a smaller pipe still works, in more rounds
                fcntl.fcntl(self.pipe_in, F_SETPIPE_SZ, PIPE_SIZE)
            self.pipe_size = fcntl.fcntl(self.pipe_in, F_GETPIPE_SZ)
            self.out = os.dup(client_fd)
        except BaseException:
            os.close(self.pipe_out)
            os.close(self.pipe_in)
            raise

    def close(self) -> None:
        for fd in (self.pipe_out, self.pipe_in, self.out):
            os.close(fd)

    async def writable(self) -> None:
        try:
            await wait_ready(self.out, write=True, timeout=self.timeout)
        except TimeoutError:
            raise interrupted(f"the client read nothing for {self.timeout:g} s") from None

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.out, view) :]
            except BlockingIOError:
                await self.writable()

    async def fill(self, most: int) -> int:
        """Up to `most` bytes from the master into the (empty) pipe, waiting for the first
        ones: how many; 0 at the connection's end."""
        source = self.body.fileno()
        filled = 0
        while filled < most:
            try:
                moved = os.splice(source, self.pipe_in, most - filled, flags=SPLICE_FLAGS)
            except BlockingIOError:  # the socket has nothing more for now (or the pipe is full)
                if filled:
                    break
                await self.body.wait_readable()
                continue
            except OSError as error:
                raise interrupted(str(error)) from None
            if not moved:
                break
            filled += moved
        return filled

    async def flush(self, count: int) -> None:
        """The pipe's `count` bytes to the client, as one chunk of the chunked body."""
        if self.framed:
            # The previous chunk's CRLF goes with this chunk's size line: one write, not two.
            await self.send(b"\r\n" * self.pending_crlf + b"%x\r\n" % count)
        while count:
            try:
                moved = os.splice(self.pipe_out, self.out, count, flags=SPLICE_FLAGS)
            except BlockingIOError:
                await self.writable()
                continue
            if not moved:  # the pipe is never short of `count`: the client's end is gone
                raise ConnectionResetError("the client's connection ended")
            count -= moved
        self.pending_crlf = self.framed

    async def span(self, length: int | None) -> None:
        left = length
        while left is None or left > 0:
            filled = await self.fill(self.pipe_size if left is None else min(self.pipe_size, left))
            if not filled:
                if left is None:
                    return
                raise interrupted("the connection closed before the body's end")
            await self.flush(filled)
            if left is not None:
                left -= filled


async def splice_body(
    request: web.Request, response: web.StreamResponse, body: RawDownload, timeout: float
) -> None:
    """The whole of `body` to the client of a prepared `response` (whose own writes are all
    out before the first spliced byte and go on after the last); OSError if the client left."""
    transport = request.transport
    assert transport is not None
    framed = response.headers.get("Transfer-Encoding", "").lower() == "chunked"
    splicer = _Splicer(body, transport.get_extra_info("socket").fileno(), framed, timeout)
    try:
        while transport.get_write_buffer_size():  # the headers, still in the transport's buffer
            await splicer.writable()
        async for length in body.spans():
            await splicer.span(length)
        if splicer.pending_crlf:
            await splicer.send(b"\r\n")
    finally:
        splicer.close()
