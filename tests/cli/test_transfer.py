"""The CLI's small HTTP client for `$getFrom` / `$sendTo`, against a real aiohttp server."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest
from aiohttp import web

from xod.cli.errors import CliError, Unreachable
from xod.cli.transfer import get_from, ndjson_lines, send_to

BIG = bytes(range(256)) * 4096  # 1 MiB


@contextlib.asynccontextmanager
async def http_server() -> AsyncIterator[str]:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for line in (b'{"a":1}\n{"b":', b"2}\n", b'{"c":' + b"3" * 100_000 + b"}\n"):
            await response.write(line)
        await response.write_eof()
        return response

    async def sized(request: web.Request) -> web.Response:
        return web.Response(body=BIG)

    async def upload(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        async for chunk in request.content.iter_any():
            digest.update(chunk)
        return web.Response(text=f"{request.content_length} {digest.hexdigest()}\n")

    async def refuse(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=413, text="too big")

    app = web.Application(client_max_size=4 * 2**20)
    app.router.add_get("/api/stream", chunked)
    app.router.add_get("/api/sized", sized)
    app.router.add_post("/api/upload", upload)
    app.router.add_post("/api/refuse", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def collect(server: str, path: str) -> bytes:
    async with aclosing(get_from(server, path, False)) as chunks:
        return b"".join([chunk async for chunk in chunks])


async def test_downloads_uploads_and_http_errors(tmp_path: Path) -> None:
    async with http_server() as server:
        assert await collect(server, "/api/sized") == BIG
        chunks = get_from(server, "/api/stream", False)
        async with aclosing(chunks), aclosing(ndjson_lines(chunks)) as lines:
            received = [line async for line in lines]
        assert received == [b'{"a":1}', b'{"b":2}', b'{"c":' + b"3" * 100_000 + b"}"]
        with pytest.raises(CliError, match="HTTP 404"):
            await collect(server, "/api/missing")

        upload = tmp_path / "disk.img"
        upload.write_bytes(BIG)
        answer = await send_to(server, "/api/upload", str(upload), False)
        assert answer == f"{len(BIG)} {hashlib.sha256(BIG).hexdigest()}\n"
        with pytest.raises(CliError, match="HTTP 413 too big"):
            await send_to(server, "/api/refuse", str(upload), False)
        with pytest.raises(CliError, match="cannot read"):
            await send_to(server, "/api/upload", str(tmp_path / "nope"), False)

    with pytest.raises(Unreachable, match="server unreachable"):
        await collect(server, "/api/sized")  # the server is gone now
