"""The transport reads a whole answer body however the peer frames it: with a Content-Length
(into one buffer), chunked, gzip-encoded; a body cut short is a TransportError."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web
from yarl import URL

from xod.xapi.errors import TransportError
from xod.xapi.transport import Transport

# Big enough to arrive in many chunks.
ANSWER = orjson.dumps(
    {"result": {f"OpaqueRef:{i}": {"name_label": "x" * 50} for i in range(20_000)}}
)


async def _sized(_request: web.Request) -> web.Response:
    return web.Response(body=ANSWER, content_type="application/json")


async def _chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start in range(0, len(ANSWER), 100_000):
        await response.write(ANSWER[start : start + 100_000])
    await response.write_eof()
    return response


async def _gzipped(_request: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(ANSWER),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )


@pytest.fixture
async def http_peer() -> AsyncIterator[URL]:
    app = web.Application()
    app.router.add_post("/sized", _sized)
    app.router.add_post("/chunked", _chunked)
    app.router.add_post("/gzipped", _gzipped)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    yield URL(f"http://127.0.0.1:{port}")
    await runner.cleanup()


@pytest.mark.parametrize("path", ["/sized", "/chunked", "/gzipped"])
async def test_whole_body_however_it_is_framed(http_peer: URL, path: str) -> None:
    transport = Transport()
    try:
        answer = await transport.post(
            http_peer.with_path(path), b"{}", "application/json", timeout=5, method="m"
        )
    finally:
        await transport.close()
    assert answer.status == 200
    assert orjson.loads(answer.body) == orjson.loads(ANSWER)


async def test_body_shorter_than_its_content_length(unused_tcp_port: int) -> None:
    async def lying_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(lying_peer, "127.0.0.1", unused_tcp_port)
    transport = Transport()
    try:
        with pytest.raises(TransportError):
            await transport.post(
                URL(f"http://127.0.0.1:{unused_tcp_port}/"),
                b"{}",
                "application/json",
                timeout=5,
                method="m",
            )
    finally:
        await transport.close()
        server.close()
        await server.wait_closed()
