"""Waiting for a raw socket's readiness on the running event loop, for the code that moves bytes
between sockets itself (xod/xapi/raw_download.py, xod/server/passthrough.py) rather than
through an asyncio transport."""

from __future__ import annotations

import asyncio


async def wait_ready(fd: int, *, write: bool, timeout: float) -> None:
    """Until `fd` is readable (or writable); TimeoutError after `timeout` seconds.

    `fd` must not belong to an asyncio transport (the loop refuses a second watcher on it):
    give a `os.dup` of such a socket's descriptor."""
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
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)
