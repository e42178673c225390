"""Serving a streamed download (`$getFrom` URLs, the REST exports) so that a client can always
tell a whole body from a broken one."""

from __future__ import annotations

import contextlib
import logging

from aiohttp import web

from xod.api.oneshot import Stream
from xod.server.passthrough import can_splice, splice_body
from xod.xapi.raw_download import RawDownload
from xod.xapi.transfers import IDLE_TIMEOUT, Body

log = logging.getLogger("xod.server.downloads")


async def stream_download(
    request: web.Request, stream: Stream, headers: dict[str, str]
) -> web.StreamResponse:
    """Write `stream()` out as a chunked body, at the client's pace: its bytes, and the pool
    master's bodies it yields (spliced from socket to socket when both are plain).

    An error before the first byte propagates (nothing was sent: the caller answers it as its
    protocol does). One after it aborts the connection without the chunked terminator, so the
    client sees an incomplete body, never a clean end that would look complete."""
    async with contextlib.aclosing(stream()) as chunks:
        first = await anext(chunks, b"")
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        try:
            await _write(request, response, first)
            async for item in chunks:
                await _write(request, response, item)
        except Exception as error:
            log.warning("download %s cut short: %s", request.path[:16], error)
            if request.transport is not None:
                request.transport.abort()
            return response
    await response.write_eof()
    return response


async def _write(request: web.Request, response: web.StreamResponse, item: bytes | Body) -> None:
    if isinstance(item, bytes):
        await response.write(item)
    elif isinstance(item, RawDownload) and can_splice(request):
        await splice_body(request, response, item, IDLE_TIMEOUT)
    else:
        async for chunk in item.chunks():
            await response.write(chunk)
