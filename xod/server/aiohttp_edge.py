"""The only module that reaches into aiohttp's private parts; each use is documented here.

xod writes pre-encoded WebSocket frames straight to the transport (a notification is framed
once and the same bytes go to every connection: xod/server/frames.py). To do that without
overrunning a slow client it must know when aiohttp's protocol has paused writing, and wait
until it resumes — aiohttp keeps both private. Everything else xod needs from aiohttp is
public (`request.transport`, `request.protocol`, `runner.addresses`).

tests/server/test_aiohttp_edge.py checks every access below on the installed aiohttp, over a
real socket, and that the installed version is inside the range pinned in pyproject.toml (the
range that test covers): an aiohttp upgrade that changes them fails there, loudly, not in
production.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

# The aiohttp releases this module was checked against (keep in step with pyproject.toml).
TESTED_AIOHTTP = ((3, 10), (3, 15))  # [first, end)


def writing_paused(protocol: Any) -> bool:
    """Whether the connection's transport has passed its high-water mark.

    aiohttp's `BaseProtocol` (aiohttp/base_protocol.py) sets `_paused` in `pause_writing()`
    and clears it in `resume_writing()`, the asyncio flow-control callbacks of the transport.
    """
    paused: bool = protocol._paused
    return paused


async def wait_writable(protocol: Any) -> None:
    """Wait until the transport drops below its low-water mark (or the connection is lost:
    then it raises ConnectionResetError).

    `BaseProtocol._drain_helper()` is what aiohttp's own writers await: it returns at once
    when not paused, else waits on a future that `resume_writing()` / `connection_lost()`
    completes.
    """
    await protocol._drain_helper()


def max_message_size(ws: web.WebSocketResponse) -> int:
    """The largest incoming message `ws` accepts (its `max_msg_size` argument), which aiohttp
    keeps as `_max_msg_size` and exposes nowhere else."""
    return ws._max_msg_size
