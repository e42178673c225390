"""Serving a streamed download (`$getFrom` URLs, the REST exports) so that a client can always
tell a whole body from a broken one."""

from __future__ import annotations

import contextlib
import logging

from aiohttp import web

from xod.api.oneshot import Stream

log = logging.getLogger("xod.server.downloads")

# What a download's connection may hold unsent before the stream waits for the client: with the
# transport's 64 KiB default, nearly every chunk read from the master waited for the client.
WRITE_AHEAD = 2 * 1024 * 1024


async def stream_download(
    request: web.Request, stream: Stream, headers: dict[str, str]
) -> web.StreamResponse:
    """Write `stream()` out as a chunked body, at the client's pace.

    An error before the first byte propagates (nothing was sent: the caller answers it as its
    protocol does). One after it aborts the connection without the chunked terminator, so the
    client sees an incomplete body, never a clean end that would look complete."""
    async with contextlib.aclosing(stream()) as chunks:
        first = await anext(chunks, b"")
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        if request.transport is not None:
            request.transport.set_write_buffer_limits(high=WRITE_AHEAD)
        try:
            await response.write(first)
            async for chunk in chunks:
                await response.write(chunk)
        except Exception as error:
            log.warning("download %s cut short: %s", request.path[:16], error)
            if request.transport is not None:
                request.transport.abort()
            return response
    await response.write_eof()
    return response
