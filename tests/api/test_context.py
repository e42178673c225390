"""The connection state a handler sees: expiry closes it, without noise when that is cut short."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from xod.api.context import ApiConnection


async def test_expiry_close_cancelled_midway_reports_nothing() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        closing = asyncio.Event()

        async def slow_close(code: int, reason: str) -> None:
            closing.set()
            await asyncio.sleep(60)  # a peer that never completes the close handshake

        connection = ApiConnection("127.0.0.1", slow_close)
        connection.set_expiration(int(time.time() * 1000))
        await asyncio.wait_for(closing.wait(), 5)
        assert connection.closed
        # Shutdown cancels the close in flight: its done-callback must not raise.
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        await asyncio.sleep(0.01)
        assert reported == []
    finally:
        loop.set_exception_handler(previous)
