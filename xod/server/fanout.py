"""Encode-once fan-out of store change batches to connections.

One store listener. Per batch: the `all` notification (every signed-in connection that did not
opt out) is encoded once per wire format in use and the same frames go to every such
connection; each subscription scope (same filter and fields) filters and projects once and
encodes once per format, with each subscription's id spliced into the shared bytes
(`ChangesTemplate`; a subscription's frames: xod/server/changes.py). Nothing here awaits per
connection: a `Peer` writes at once or queues, and drains on its own.

A watchdog closes connections behind for longer than `max_lag`, and sends bookmarks (an empty
`xod.changes` with the current revision) to subscriptions idle for `bookmark_interval`, so a
client's resume point stays inside the store's history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from xod.api.subscriptions import Delta, Scope, scope_key
from xod.cache.store import ChangeBatch, Gone, ObjectStore
from xod.server.changes import (
    CHUNK_OBJECTS,
    MAX_SCOPES,
    MAX_SUBSCRIPTIONS_PER_CONNECTION,
    SUBSCRIPTION_ID_LENGTH,
    StartFrames,
    Subscription,
    too_many_subscriptions,
)
from xod.server.frames import (
    FORMATS,
    PING_FRAME,
    ChangesTemplate,
    WireFormat,
    all_frames,
)
from xod.server.limits import DaemonLimits
from xod.server.peer import SLOW_CLIENT_CLOSE_CODE, Peer

log = logging.getLogger("xod.server")

NO_PONG_CLOSE_CODE = 4009
DEFAULT_NOTIFICATION_FRAME_BYTES = 1024 * 1024

# Callbacks to run once the current call's response has been queued (set per call by the
# WebSocket edge): a subscription's first frames must follow the response that names it.
after_reply: ContextVar[list[Callable[[], None]] | None] = ContextVar("after_reply", default=None)


@dataclass
class FanoutConfig:
    budget_bytes: int = 4 * 1024 * 1024
    max_lag: float = 30.0
    bookmark_interval: float = 30.0
    # Keepalive: a peer silent for this long is pinged; silent for twice as long (no pong),
    # it is dropped. None disables.
    ping_interval: float | None = 30.0
    # Largest `all` frame (one object bigger than this still goes, alone in its frame).
    notification_frame_bytes: int = DEFAULT_NOTIFICATION_FRAME_BYTES
    max_subscriptions_per_connection: int = MAX_SUBSCRIPTIONS_PER_CONNECTION
    max_scopes: int = MAX_SCOPES


class AllStream:
    """XO's `all` notification as a coalescible stream, in bounded frames."""

    def __init__(self, config: FanoutConfig) -> None:
        self.config = config

    def frames(self, fmt: WireFormat, enter: dict[str, Any], exit_ids: list[str]) -> list[bytes]:
        return all_frames(
            fmt,
            enter,
            exit_ids,
            max_objects=CHUNK_OBJECTS,
            max_bytes=self.config.notification_frame_bytes,
        )

    def coalesced_frames(
        self, fmt: WireFormat, items: dict[str, Any], revision: int
    ) -> list[bytes]:
        enter = {i: o for i, o in items.items() if o is not None}
        exit_ids = [i for i, o in items.items() if o is None]
        return self.frames(fmt, enter, exit_ids)


class Fanout:
    def __init__(
        self,
        store: ObjectStore,
        config: FanoutConfig | None = None,
        limits: DaemonLimits | None = None,
    ) -> None:
        self.store = store
        self.config = config or FanoutConfig()
        self.limits = limits or DaemonLimits()
        self.all_stream = AllStream(self.config)
        self.peers: set[Peer] = set()
        self.lagging: set[Peer] = set()
        # Signed-in connections receiving `all`, per wire format.
        self._all: dict[WireFormat, set[Peer]] = {fmt: set() for fmt in FORMATS}
        self.scopes: dict[str, Scope] = {}
        self._subscriptions: dict[Peer, dict[str, Subscription]] = {}
        self._unsubscribe_store: Callable[[], None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self.batches = 0
        # First frames of new subscriptions and store.changes_since results, valid until the
        # next batch.
        self._start_cache: dict[tuple[str, WireFormat, int | None], StartFrames] = {}
        self._missed_cache: dict[int, ChangeBatch] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._unsubscribe_store is None:
            self._unsubscribe_store = self.store.subscribe(self._on_batch)
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._unsubscribe_store is not None:
            self._unsubscribe_store()
            self._unsubscribe_store = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        self.limits.close()

    def set_budget(self, budget_bytes: int) -> None:
        """A new output budget, for every signed-in connection (a reload changes it)."""
        self.config.budget_bytes = budget_bytes
        for peer in self.peers:
            peer.budget = budget_bytes

    def close_all(self, code: int, reason: str) -> None:
        """Close every connection (shutdown): their handlers end after the close handshake."""
        for peer in list(self.peers):
            peer.fail(code, reason)

    # -- connections ----------------------------------------------------------------------------

    def new_peer(
        self,
        transport: asyncio.Transport,
        protocol: Any,
        fmt: WireFormat,
        on_close: Callable[[int, str], None],
    ) -> Peer:
        peer = Peer(
            transport,
            protocol,
            fmt,
            budget=self.config.budget_bytes,
            limits=self.limits,
            lagging=self.lagging,
            on_close=on_close,
        )
        self.peers.add(peer)
        return peer

    def remove_peer(self, peer: Peer) -> None:
        peer.detach()
        self.peers.discard(peer)
        self._all[peer.fmt].discard(peer)
        self.unsubscribe_all(peer)

    def join_all(self, peer: Peer) -> None:
        if not peer.closed:
            self._all[peer.fmt].add(peer)

    def leave_all(self, peer: Peer) -> None:
        self._all[peer.fmt].discard(peer)
        peer.forget(self.all_stream)

    def receives_all(self, peer: Peer) -> bool:
        return peer in self._all[peer.fmt]

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe(
        self,
        peer: Peer,
        filter_spec: Any,
        fields: Sequence[str] | None,
        since: int | None,
    ) -> dict[str, Any]:
        """Create a subscription; its first frames are queued after the caller's response.
        Raises `Gone` for a `since` outside the history, and the matcher's syntax errors."""
        store = self.store
        revision = store.revision
        if since is not None and not store.oldest_revision <= since <= revision:
            raise Gone(since, store.oldest_revision, revision)
        config = self.config
        if len(self._subscriptions.get(peer, ())) >= config.max_subscriptions_per_connection:
            raise too_many_subscriptions(config.max_subscriptions_per_connection, "per connection")
        key = scope_key(filter_spec, fields)
        scope = self.scopes.get(key)
        new_scope = scope is None
        if scope is None:
            if len(self.scopes) >= config.max_scopes:
                raise too_many_subscriptions(config.max_scopes, "distinct filters in xod")
            scope = Scope(key, filter_spec, fields)  # compiles: syntax errors raise here
        subscription_id = secrets.token_hex(SUBSCRIPTION_ID_LENGTH // 2)
        subscription = Subscription(subscription_id, scope, peer)
        if new_scope:
            scope.load_store(store)
            self.scopes[key] = scope
        scope.subscriptions[subscription_id] = subscription
        self._subscriptions.setdefault(peer, {})[subscription_id] = subscription
        hooks = after_reply.get()
        if hooks is None:
            self._activate(subscription, since)
        else:
            hooks.append(lambda: self._activate(subscription, since))
        return {"subscription": subscription_id, "revision": revision}

    def unsubscribe(self, peer: Peer, subscription_id: str) -> bool:
        subscription = self._subscriptions.get(peer, {}).pop(subscription_id, None)
        if subscription is None:
            return False
        self._drop(subscription)
        return True

    def unsubscribe_all(self, peer: Peer) -> None:
        for subscription in list(self._subscriptions.pop(peer, {}).values()):
            self._drop(subscription)

    def subscription_count(self) -> int:
        return sum(len(s.subscriptions) for s in self.scopes.values())

    def _drop(self, subscription: Subscription) -> None:
        subscription.active = False
        subscription.peer.forget(subscription)
        scope = subscription.scope
        scope.subscriptions.pop(subscription.id, None)
        if not scope.subscriptions and self.scopes.get(scope.key) is scope:
            del self.scopes[scope.key]

    def _activate(self, subscription: Subscription, since: int | None) -> None:
        """Queue the snapshot (or the missed changes), then go live: all synchronously, so no
        batch falls between the two."""
        if subscription.id not in subscription.scope.subscriptions:
            return  # unsubscribed (or disconnected) before its response went out
        peer = subscription.peer
        try:
            templates = self._start_frames(subscription.scope, peer.fmt, since)
        except Gone:
            log.warning("subscription %s: history moved on before its start", subscription.id)
            self.unsubscribe(peer, subscription.id)
            return
        peer.send_stream(templates.frames(subscription.id_bytes))
        subscription.last_sent = time.monotonic()
        subscription.active = True

    def _start_frames(self, scope: Scope, fmt: WireFormat, since: int | None) -> StartFrames:
        """A subscription's first frames, shared by every subscriber that starts the same way
        at the same revision (many clients reconnecting at once share one encoding)."""
        key = (scope.key, fmt, since)
        frames = self._start_cache.get(key)
        if frames is not None:
            return frames
        store = self.store
        if since is None:
            delta = Delta(store.revision, scope.snapshot(store.objects), [])
        else:
            missed = self._missed_cache.get(since)
            if missed is None:
                missed = self._missed_cache[since] = store.changes_since(since)
            delta = scope.resume(missed)
        frames = self._start_cache[key] = StartFrames(fmt, delta, store.encoded)
        return frames

    # -- the hot path ---------------------------------------------------------------------------

    def _on_batch(self, batch: ChangeBatch) -> None:
        self.batches += 1
        if self._start_cache or self._missed_cache:
            self._start_cache.clear()
            self._missed_cache.clear()
        revision = batch.revision
        for fmt, peers in self._all.items():
            if peers:
                frames = self.all_stream.frames(fmt, batch.enter, batch.exit)
                enter, exit_ids = batch.enter, batch.exit
                for peer in peers:
                    peer.send_changes(self.all_stream, frames, enter, exit_ids, revision)
        if not self.scopes:
            return
        now = time.monotonic()
        for scope in list(self.scopes.values()):
            delta = scope.apply(batch)
            if not delta:
                continue
            templates: dict[WireFormat, ChangesTemplate] = {}
            for subscription in scope.subscriptions.values():
                if not subscription.active:
                    continue
                peer = subscription.peer
                template = templates.get(peer.fmt)
                if template is None:
                    template = templates[peer.fmt] = ChangesTemplate(
                        peer.fmt, SUBSCRIPTION_ID_LENGTH, revision, delta.enter, delta.exit
                    )
                peer.send_changes(
                    subscription,
                    (template.frame(subscription.id_bytes),),
                    delta.enter,
                    delta.exit,
                    revision,
                )
                subscription.last_sent = now

    # -- watchdog -------------------------------------------------------------------------------

    async def _watch(self) -> None:
        config = self.config
        tick = min(1.0, config.max_lag / 4, config.bookmark_interval / 4)
        if config.ping_interval:
            tick = min(tick, config.ping_interval / 4)
        next_bookmarks = time.monotonic() + config.bookmark_interval / 3
        next_pings = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            try:
                next_bookmarks, next_pings = self._watch_once(next_bookmarks, next_pings)
            except Exception:
                # One bad pass must not end keepalive, slow-client closing and bookmarks.
                log.exception("live changes watchdog: pass failed")

    def _watch_once(self, next_bookmarks: float, next_pings: float) -> tuple[float, float]:
        """One watchdog pass; the times of the next bookmark and ping passes."""
        now = time.monotonic()
        max_lag = self.config.max_lag
        for peer in list(self.lagging):
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
            next_bookmarks = now + self.config.bookmark_interval / 3
            self._bookmarks(now)
        interval = self.config.ping_interval
        if interval and now >= next_pings:
            # A pass over every connection costs ~0.3 µs each: a few passes per interval.
            next_pings = now + interval / 4
            self._keepalive(now, interval)
        return next_bookmarks, next_pings

    def _keepalive(self, now: float, interval: float) -> None:
        """One pre-built ping frame written to every silent peer: no timer or task per
        connection. A peer that stays silent through a whole ping interval is dead."""
        for peer in list(self.peers):
            silent = now - peer.last_seen
            if silent < interval:
                continue
            if silent >= 2 * interval and now - peer.last_ping < 2 * interval:
                peer.fail(NO_PONG_CLOSE_CODE, "no pong: peer presumed dead")
            elif now - peer.last_ping >= interval:
                peer.last_ping = now
                peer.send(PING_FRAME)

    def _bookmarks(self, now: float) -> None:
        interval = self.config.bookmark_interval
        revision = self.store.revision
        templates: dict[WireFormat, ChangesTemplate] = {}
        for scope in self.scopes.values():
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

    def stats(self) -> Mapping[str, int]:
        return {
            "connections": len(self.peers),
            "all_receivers": sum(len(p) for p in self._all.values()),
            "subscriptions": self.subscription_count(),
            "scopes": len(self.scopes),
            "lagging": len(self.lagging),
        }
