"""The fan-out's watchdog: one pass every tick over every connection (no timer or task per
connection) closes the ones behind for longer than `max_lag`, sends subscriptions' bookmarks
(`Fanout._bookmarks`) and pings silent peers, dropping those that never answer."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from xod.server.changes import SUBSCRIPTION_ID_LENGTH
from xod.server.frames import PING_FRAME, ChangesTemplate, WireFormat
from xod.server.peer import SLOW_CLIENT_CLOSE_CODE

if TYPE_CHECKING:
    from xod.server.fanout import Fanout

log = logging.getLogger("xod.server")

NO_PONG_CLOSE_CODE = 4009


async def watch(fanout: Fanout) -> None:
    config = fanout.config
    tick = min(1.0, config.max_lag / 4, config.bookmark_interval / 4)
    if config.ping_interval:
        tick = min(tick, config.ping_interval / 4)
    next_bookmarks = time.monotonic() + config.bookmark_interval / 3
    next_pings = time.monotonic()
    while True:
        await asyncio.sleep(tick)
        try:
            next_bookmarks, next_pings = watch_once(fanout, next_bookmarks, next_pings)
        except Exception:
            # One bad pass must not end keepalive, slow-client closing and bookmarks.
            log.exception("live changes watchdog: pass failed")


def watch_once(fanout: Fanout, next_bookmarks: float, next_pings: float) -> tuple[float, float]:
    """One watchdog pass; the times of the next bookmark and ping passes."""
    now = time.monotonic()
    max_lag = fanout.config.max_lag
    for peer in list(fanout.lagging):
        since = peer.behind_since
        if since is not None and now - since > max_lag:
            log.info(
                "closing a client behind for more than %g s (%d bytes queued)",
                max_lag,
                peer.queued_bytes,
            )
            peer.fail(
                SLOW_CLIENT_CLOSE_CODE,
                f"client too slow: behind for more than {max_lag:g} s",
            )
    if now >= next_bookmarks:
        next_bookmarks = now + fanout.config.bookmark_interval / 3
        fanout._bookmarks(now)
    interval = fanout.config.ping_interval
    if interval and now >= next_pings:
        # A pass over every connection costs ~0.3 µs each: a few passes per interval.
        next_pings = now + interval / 4
        keepalive(fanout, now, interval)
    return next_bookmarks, next_pings


def keepalive(fanout: Fanout, now: float, interval: float) -> None:
    """One pre-built ping frame written to every silent peer: no timer or task per
    connection. A peer that stays silent through a whole ping interval is dead."""
    for peer in list(fanout.peers):
        silent = now - peer.last_seen
        if silent < interval:
            continue
        if silent >= 2 * interval and now - peer.last_ping < 2 * interval:
            peer.fail(NO_PONG_CLOSE_CODE, "no pong: peer presumed dead")
        elif now - peer.last_ping >= interval:
            peer.last_ping = now
            peer.send(PING_FRAME)


def bookmarks(fanout: Fanout, now: float) -> None:
    """An empty `xod.changes` (the current revision) to each subscription idle for
    `bookmark_interval`."""
    interval = fanout.config.bookmark_interval
    revision = fanout.store.revision
    templates: dict[WireFormat, ChangesTemplate] = {}
    for scope in fanout.all_scopes():
        for subscription in scope.subscriptions.values():
            if not subscription.active or now - subscription.last_sent < interval:
                continue
            peer = subscription.peer
            template = templates.get(peer.fmt)
            if template is None:
                template = templates[peer.fmt] = ChangesTemplate(
                    peer.fmt, SUBSCRIPTION_ID_LENGTH, revision, {}, []
                )
            peer.send_changes(
                subscription, (template.frame(subscription.id_bytes),), {}, (), revision
            )
            subscription.last_sent = now
