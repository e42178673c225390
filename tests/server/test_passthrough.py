"""A pool master's download passed through to a client (xod/xapi/raw_download.py,
xod/server/passthrough.py, xod/server/downloads.py), in each of the framings a master may use:
XAPI's (the body ends when the connection closes), a Content-Length, and chunked (with
trailers). The master is a real socket server writing those bytes, the front an aiohttp server
(plain: spliced; TLS: copied), the client aiohttp."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from tests.xapi.proxy import make_self_signed_cert, server_context
from xod.server import passthrough
from xod.server.downloads import stream_download
from xod.xapi.errors import TransportError
from xod.xapi.raw_download import TransferRefused, open_download
from xod.xapi.transfers import Body

BODY = os.urandom(3 * 1024 * 1024 + 17)


def close_delimited(body: bytes) -> list[bytes]:
    return [b"HTTP/1.0 200 OK\r\nConnection: close\r\ntask-id: OpaqueRef:1\r\n\r\n", body]


def with_length(body: bytes) -> list[bytes]:
    return [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body]


def chunked(body: bytes) -> list[bytes]:
    parts = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    for start in range(0, len(body), 700_001):  # chunks that straddle the pipe's size
        piece = body[start : start + 700_001]
        parts += [b"%x;ext=1\r\n" % len(piece), piece, b"\r\n"]
    return [*parts, b"0\r\nX-Trailer: yes\r\n\r\n"]


FRAMINGS = {"close": close_delimited, "length": with_length, "chunked": chunked}


@asynccontextmanager
async def master(parts: list[bytes]) -> AsyncIterator[str]:
    """A socket server that answers any request with `parts`, then closes."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for part in parts:
            writer.write(part)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/export_raw_vdi/?vdi=x"
    finally:
        server.close()


@asynccontextmanager
async def front(
    upstream: str, tls: ssl.SSLContext | None, spliced: list[bool]
) -> AsyncIterator[str]:
    """An aiohttp server relaying `upstream` as xod's downloads do; notes whether it spliced."""

    async def relay(request: web.Request) -> web.StreamResponse:
        spliced.append(passthrough.can_splice(request))

        async def stream() -> AsyncGenerator[bytes | Body, None]:
            body = await open_download(URL(upstream), connect_timeout=5, idle_timeout=5)
            try:
                yield body
            finally:
                await body.close()

        return await stream_download(request, stream, {"Content-Type": "application/x"})

    app = web.Application()
    app.router.add_get("/", relay)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    certificate = make_self_signed_cert(tmp_path)
    return server_context(certificate), ssl.create_default_context(cafile=str(certificate[0]))


@pytest.fixture
def splice_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bytes each os.splice call moved (the real call, counted)."""
    moved: list[int] = []
    real = os.splice

    def counted(*args: Any, **kwargs: Any) -> int:
        count = real(*args, **kwargs)
        moved.append(count)
        return count

    monkeypatch.setattr(os, "splice", counted)
    return moved


async def fetch(url: str, client_tls: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url, ssl=client_tls or True) as response:
        return response.status, await response.read()


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_a_plain_client_gets_the_body_spliced(framing: str, splice_calls: list[int]) -> None:
    spliced: list[bool] = []
    async with master(FRAMINGS[framing](BODY)) as upstream, front(upstream, None, spliced) as url:
        assert await fetch(url) == (200, BODY)
    assert spliced == [True]
    # master → pipe, then pipe → client: every byte crossed the pipe twice, never xod's memory
    assert sum(splice_calls) == 2 * len(BODY)


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_a_tls_client_gets_the_body_copied(
    framing: str, tls_pair: tuple[ssl.SSLContext, ssl.SSLContext], splice_calls: list[int]
) -> None:
    server_tls, client_tls = tls_pair
    spliced: list[bool] = []
    async with (
        master(FRAMINGS[framing](BODY)) as upstream,
        front(upstream, server_tls, spliced) as url,
    ):
        assert await fetch(url, client_tls) == (200, BODY)
    assert spliced == [False] and splice_calls == []


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_an_empty_body(framing: str) -> None:
    async with master(FRAMINGS[framing](b"")) as upstream, front(upstream, None, []) as url:
        assert await fetch(url) == (200, b"")


def cut(framing: Callable[[bytes], list[bytes]]) -> list[bytes]:
    """The framing's bytes with the connection closing 1 MiB short of its end."""
    return [b"".join(framing(BODY))[: -1024 * 1024]]


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_a_master_closing_early_cuts_the_clients_body(framing: str) -> None:
    async with master(cut(FRAMINGS[framing])) as upstream, front(upstream, None, []) as url:
        with pytest.raises(aiohttp.ClientPayloadError):
            await fetch(url)  # chunked, without its end: visibly incomplete


async def test_a_refusal_is_read_before_any_byte_goes_out() -> None:
    refusal = [b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n", b"RBAC_PERMISSION_DENIED"]
    async with master(refusal) as upstream:
        with pytest.raises(TransferRefused) as refused:
            await open_download(URL(upstream), connect_timeout=5, idle_timeout=5)
    assert refused.value.status == 403 and refused.value.reason == "RBAC_PERMISSION_DENIED"


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000,  # a head that never ends
    ],
)
async def test_a_bad_answer_head_is_a_transport_error(answer: bytes) -> None:
    async with master([answer]) as upstream:
        with pytest.raises(TransportError):
            await open_download(URL(upstream), connect_timeout=5, idle_timeout=5)


async def test_a_bad_chunk_size_cuts_the_body() -> None:
    parts = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"zz\r\n", b"abc"]
    async with master(parts) as upstream, front(upstream, None, []) as url:
        with pytest.raises(aiohttp.ClientPayloadError):
            await fetch(url)
