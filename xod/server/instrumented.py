"""The pool connection the daemon makes: a PoolConnection whose event stream is observed for
/metrics (xod/metrics.py). Passed as PoolManager's `connection_factory`."""

from __future__ import annotations

import time
from typing import Any

from xod import metrics
from xod.xapi.connection import PoolConnection


class InstrumentedPoolConnection(PoolConnection):
    """Counts event.from replies and measures how long each one takes to be applied (the
    PoolSync loop asks for the next batch right after applying one)."""

    def __init__(self, url: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(url, *args, **kwargs)
        self._server_label = url
        self._reply_at: float | None = None

    async def event_from(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        server = self._server_label
        if self._reply_at is not None:
            metrics.observe_event_lag(server, time.monotonic() - self._reply_at)
            self._reply_at = None
        reply = await super().event_from(*args, **kwargs)
        self._reply_at = time.monotonic()
        metrics.observe_event_batch(server, len(reply.get("events") or ()))
        return reply
