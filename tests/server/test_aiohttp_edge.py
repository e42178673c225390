"""What xod relies on in aiohttp's private parts (xod/server/aiohttp_edge.py), checked on the
installed aiohttp over a real socket. If an aiohttp upgrade changes any of it, this fails here
rather than xod misbehaving under a slow client; the range it was checked on is pinned in
pyproject.toml."""

from __future__ import annotations

import asyncio
import socket
import struct
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from packaging.specifiers import SpecifierSet

from tests.server.raw_ws import RawWebSocket
from xod.server.aiohttp_edge import (
    TESTED_AIOHTTP,
    max_message_size,
    wait_writable,
    writing_paused,
)
from xod.server.frames import data_frame
from xod.server.listen import listen

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
CHUNK = data_frame(b"x" * 60_000, binary=True)


def pinned_aiohttp() -> SpecifierSet:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (pin,) = [d for d in dependencies if d.startswith("aiohttp")]
    return SpecifierSet(pin.removeprefix("aiohttp"))


def test_the_installed_aiohttp_is_the_tested_range_and_so_is_the_pin() -> None:
    (first, end) = TESTED_AIOHTTP
    pin = pinned_aiohttp()
    assert pin == SpecifierSet(f">={first[0]}.{first[1]},<{end[0]}.{end[1]}")
    assert aiohttp.__version__ in pin, f"aiohttp {aiohttp.__version__} is outside {pin}"
    # The floor: xod/xapi/transport.py catches ConnectionTimeoutError (new in 3.10).
    assert issubclass(aiohttp.ConnectionTimeoutError, aiohttp.ServerTimeoutError)


class EdgeServer:
    """An aiohttp WebSocket endpoint that hands each connection's parts to the test."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[tuple[web.WebSocketResponse, Any, Any]] = asyncio.Queue()

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=12345)
        await ws.prepare(request)
        assert request.transport is not None
        request.transport.set_write_buffer_limits(high=64 * 1024)
        await self.connections.put((ws, request.transport, request.protocol))
        async for _ in ws:  # until the client goes
            pass
        return ws


@pytest.fixture
async def edge() -> AsyncIterator[tuple[EdgeServer, int]]:
    server = EdgeServer()
    app = web.Application()
    app.router.add_get("/api/", server.handler)
    listener = await listen(app, "127.0.0.1", 0)
    try:
        yield server, listener.port
    finally:
        await listener.close()


async def fill_until_paused(transport: Any, protocol: Any) -> None:
    for _ in range(1000):
        if writing_paused(protocol):
            return
        transport.write(CHUNK)
        await asyncio.sleep(0)
    raise AssertionError("the transport never paused writing for a client that does not read")


async def test_paused_writing_is_seen_and_its_end_awaited(edge: tuple[EdgeServer, int]) -> None:
    server, port = edge
    client = await RawWebSocket.connect("127.0.0.1", port)
    async with asyncio.timeout(5):  # the server side of the connection
        ws, transport, protocol = await server.connections.get()
    assert max_message_size(ws) == 12345
    assert not writing_paused(protocol)
    await wait_writable(protocol)  # not paused: returns at once

    await fill_until_paused(transport, protocol)
    waiting = asyncio.create_task(wait_writable(protocol))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # still paused: the client reads nothing

    async def read_everything() -> None:
        while transport.get_write_buffer_size() or writing_paused(protocol):
            await client.recv()

    async with asyncio.timeout(10):  # the client reads: writing resumes
        reader = asyncio.create_task(read_everything())
        await waiting
        assert not writing_paused(protocol)
        await reader
    client.close()


async def test_a_connection_lost_while_paused_ends_the_wait(edge: tuple[EdgeServer, int]) -> None:
    server, port = edge
    client = await RawWebSocket.connect("127.0.0.1", port)
    async with asyncio.timeout(5):  # the server side of the connection
        _ws, transport, protocol = await server.connections.get()
    await fill_until_paused(transport, protocol)
    waiting = asyncio.create_task(wait_writable(protocol))
    # A reset (unread data in the buffer): the server's transport is lost.
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    async with asyncio.timeout(5):  # the wait ends with the connection
        with pytest.raises(ConnectionError):
            await waiting
