"""Serving a streamed download (`$getFrom` URLs, the REST exports) so that a client can always
tell a whole body from a broken one."""

from __future__ import annotations

import contextlib
import logging

from aiohttp import web

from xod.api.oneshot import Stream

log = logging.getLogger("xod.server.downloads")


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
