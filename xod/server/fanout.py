"""Encode-once fan-out of store change batches to connections.

One store listener. Per batch: the `all` notification (every signed-in connection that did not
opt out) is encoded once per wire format in use and the same frames go to every such
connection; each subscription scope (same filter and fields) filters and projects once and
encodes once per format, with each subscription's id spliced into the shared bytes
(`ChangesTemplate`; a subscription's frames: xod/server/changes.py). Nothing here awaits per
connection: a `Peer` writes at once or queues, and drains on its own.

Connections of users who may not see everything are grouped by view (xod/api/views.py,
xod/server/view_groups.py): the same, once per view, with only what the view sees; when grants
change they move live to their new view (xod/server/regrant.py).

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

from xod.api.access import Access, View
from xod.api.errors import ApiError
from xod.api.subscriptions import Delta, Scope, scope_key
from xod.api.views import TooManyViews, Views, ViewState
from xod.cache.store import ChangeBatch, Gone, ObjectStore
from xod.server.changes import (
    MAX_SCOPES,
    MAX_SUBSCRIPTIONS_PER_CONNECTION,
    SUBSCRIPTION_ID_LENGTH,
    AllStream,
    StartFrames,
    Subscription,
    too_many_subscriptions,
)
from xod.server.frames import (
    FORMATS,
    ChangesTemplate,
    WireFormat,
)
from xod.server.limits import DaemonLimits
from xod.server.peer import Peer
from xod.server.regrant import move, regrant
from xod.server.view_groups import UserLookup, ViewGroup, ViewGroups
from xod.server.watchdog import bookmarks, watch
from xod.store import User

log = logging.getLogger("xod.server")

# A user whose view would exceed `MAX_VIEWS` (xod/api/views.py): WebSocket's "try again later".
TOO_MANY_VIEWS_CLOSE_CODE = 1013
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
    # Seconds a user's view outlives its last connection, for a reconnect's resume (`since`).
    view_linger: float = 60.0


class Fanout:
    def __init__(
        self,
        store: ObjectStore,
        config: FanoutConfig | None = None,
        limits: DaemonLimits | None = None,
        *,
        access: Access | None = None,
        users: UserLookup | None = None,
        views: Views | None = None,
    ) -> None:
        """`access` and `users` (a user by id) group connections by view; without them every
        connection sees everything. `views` is shared with the REST watches."""
        self.store = store
        self.config = config or FanoutConfig()
        self.limits = limits or DaemonLimits()
        self.views = views or Views(store)
        self.groups = ViewGroups(self.views, access, users, self.config.view_linger)
        self._unsubscribe_access: Callable[[], None] | None = None
        # Per view and batch (/metrics-style counters, Fanout.stats): views a batch touched, and
        # their encodings (`all` per format, subscriptions per scope and format).
        self.view_batches = self.view_encodes = self.view_scope_encodes = 0
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
        access = self.groups.access
        if access is not None and self._unsubscribe_access is None:
            self._unsubscribe_access = access.subscribe(self.regrant)

    async def stop(self) -> None:
        if self._unsubscribe_store is not None:
            self._unsubscribe_store()
            self._unsubscribe_store = None
        if self._unsubscribe_access is not None:
            self._unsubscribe_access()
            self._unsubscribe_access = None
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
        self.sign_out(peer)

    def sign_in(self, peer: Peer, user: User) -> None:
        """`peer` now acts for `user`: it joins the group of the user's view (signed in
        again, it keeps its streams, moved to the new user's view)."""
        signed_in = peer in self.groups.user_of
        self.groups.user_of[peer] = user.id
        if signed_in:
            move(self, peer, self.groups.view_of(user))
        else:
            self.join_group(peer, self.groups.view_of(user))

    def sign_out(self, peer: Peer) -> None:
        """Stop `all` and every subscription, and leave the view's group."""
        self.leave_all(peer)
        self.unsubscribe_all(peer)
        self.groups.user_of.pop(peer, None)
        self.groups.leave(peer, self.on_view_batch)

    def join_group(self, peer: Peer, view: View | None) -> ViewGroup | None:
        try:
            return self.groups.join(peer, view, self.on_view_batch)
        except TooManyViews as error:
            log.warning("refusing a connection: %s", error)
            peer.fail(TOO_MANY_VIEWS_CLOSE_CODE, str(error))
            return None

    def _receivers(self, peer: Peer) -> set[Peer]:
        group = self.groups.group_of.get(peer)
        return self._all[peer.fmt] if group is None else group.receivers[peer.fmt]

    def join_all(self, peer: Peer) -> None:
        if not peer.closed:
            self._receivers(peer).add(peer)

    def leave_all(self, peer: Peer) -> None:
        self._receivers(peer).discard(peer)
        peer.forget(self.all_stream)

    def receives_all(self, peer: Peer) -> bool:
        return peer in self._receivers(peer)

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
        if peer.closed:  # e.g. refused a view: it must not fall back to the unfiltered scopes
            raise ApiError(0, "the connection is closing")
        store = self.store
        revision = store.revision
        if since is not None and not store.oldest_revision <= since <= revision:
            raise Gone(since, store.oldest_revision, revision)
        config = self.config
        if len(self._subscriptions.get(peer, ())) >= config.max_subscriptions_per_connection:
            raise too_many_subscriptions(config.max_subscriptions_per_connection, "per connection")
        group = self.groups.group_of.get(peer)
        if group is not None and since is not None and since < group.state.flips_from:
            # Who saw what before the view was made is not known: start again.
            raise Gone(since, group.state.flips_from, revision)
        scope = self.scope_for(group, filter_spec, fields)
        subscription_id = secrets.token_hex(SUBSCRIPTION_ID_LENGTH // 2)
        subscription = Subscription(subscription_id, scope, peer, group)
        scope.subscriptions[subscription_id] = subscription
        self._subscriptions.setdefault(peer, {})[subscription_id] = subscription
        hooks = after_reply.get()
        if hooks is None:
            self._activate(subscription, since)
        else:
            hooks.append(lambda: self._activate(subscription, since))
        return {"subscription": subscription_id, "revision": revision}

    def scope_for(self, group: ViewGroup | None, filter_spec: Any, fields: Any) -> Scope:
        """The scope of (view, filter, fields), made and loaded if new."""
        key = scope_key(filter_spec, fields)
        scopes = self.scopes if group is None else group.scopes
        scope = scopes.get(key)
        if scope is not None:
            return scope
        if self.scope_count() >= self.config.max_scopes:
            raise too_many_subscriptions(self.config.max_scopes, "distinct filters in xod")
        # Compiles: syntax errors raise here.
        scope = Scope(key if group is None else f"{group.key}\n{key}", filter_spec, fields)
        scope.load_store(self.store, None if group is None else group.state.visible)
        scopes[key] = scope
        return scope

    def subscriptions_of(self, peer: Peer) -> list[Subscription]:
        return list(self._subscriptions.get(peer, {}).values())

    def regrant(self, user_ids: frozenset[str] | None) -> None:
        """Grants changed (xod/api/access.py): move these users' connections to their new
        view, sending what they now see and no longer see (xod/server/regrant.py)."""
        try:
            regrant(self, user_ids)
        except Exception:
            log.exception("moving connections to their new view failed")

    def scope_count(self) -> int:
        return len(self.scopes) + sum(len(g.scopes) for g in self.groups.by_key.values())

    def all_scopes(self) -> list[Scope]:
        scopes = list(self.scopes.values())
        for group in self.groups.by_key.values():
            scopes += group.scopes.values()
        return scopes

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
        return sum(len(s.subscriptions) for s in self.all_scopes())

    def _drop(self, subscription: Subscription) -> None:
        subscription.active = False
        subscription.peer.forget(subscription)
        self.detach_subscription(subscription)

    def detach_subscription(self, subscription: Subscription) -> None:
        """Take a subscription out of its scope (dropped when it was the last one)."""
        scope = subscription.scope
        scope.subscriptions.pop(subscription.id, None)
        group = subscription.group
        scopes = self.scopes if group is None else group.scopes
        key = scope_key(scope.filter_spec, scope.fields)
        if not scope.subscriptions and scopes.get(key) is scope:
            del scopes[key]

    def _activate(self, subscription: Subscription, since: int | None) -> None:
        """Queue the snapshot (or the missed changes), then go live: all synchronously, so no
        batch falls between the two."""
        if subscription.id not in subscription.scope.subscriptions:
            return  # unsubscribed (or disconnected) before its response went out
        peer = subscription.peer
        try:
            templates = self._start_frames(subscription, peer.fmt, since)
        except Gone:
            log.warning("subscription %s: history moved on before its start", subscription.id)
            self.unsubscribe(peer, subscription.id)
            return
        peer.send_stream(templates.frames(subscription.id_bytes))
        subscription.last_sent = time.monotonic()
        subscription.active = True

    def _start_frames(
        self, subscription: Subscription, fmt: WireFormat, since: int | None
    ) -> StartFrames:
        """A subscription's first frames, shared by every subscriber that starts the same way
        at the same revision (many clients reconnecting at once share one encoding)."""
        scope = subscription.scope
        key = (scope.key, fmt, since)
        frames = self._start_cache.get(key)
        if frames is not None:
            return frames
        store = self.store
        state: ViewState | None = subscription.group and subscription.group.state
        if since is None:
            objects = store.objects if state is None else state.objects(store)
            delta = Delta(store.revision, scope.snapshot(objects), [])
        else:
            missed = self._missed_cache.get(since)
            if missed is None:
                missed = self._missed_cache[since] = store.changes_since(since)
            if state is not None:
                missed = state.resume(missed, since, store)
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
        if self.scopes:
            self._deliver(self.scopes, batch)

    def on_view_batch(self, state: ViewState, batch: ChangeBatch) -> None:
        """One view's share of a batch: `all` encoded once per format for all its receivers,
        then its scopes."""
        group = self.groups.by_key.get(state.key)
        if group is None:
            return
        self.view_batches += 1
        revision = batch.revision
        for fmt, peers in group.receivers.items():
            if peers:
                frames = self.all_stream.frames(fmt, batch.enter, batch.exit)
                self.view_encodes += 1
                for peer in peers:
                    peer.send_changes(self.all_stream, frames, batch.enter, batch.exit, revision)
        if group.scopes:
            self.view_scope_encodes += self._deliver(group.scopes, batch)

    def _deliver(self, scopes: dict[str, Scope], batch: ChangeBatch) -> int:
        """Each scope's delta to its subscribers; the number of payloads encoded."""
        encoded = 0
        revision = batch.revision
        now = time.monotonic()
        for scope in list(scopes.values()):
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
                    encoded += 1
                peer.send_changes(
                    subscription,
                    (template.frame(subscription.id_bytes),),
                    delta.enter,
                    delta.exit,
                    revision,
                )
                subscription.last_sent = now
        return encoded

    # -- watchdog -------------------------------------------------------------------------------

    async def _watch(self) -> None:
        await watch(self)

    def _bookmarks(self, now: float) -> None:
        bookmarks(self, now)

    def stats(self) -> Mapping[str, int]:
        return {
            "connections": len(self.peers),
            "all_receivers": sum(len(p) for p in self._all.values()),
            "subscriptions": self.subscription_count(),
            "scopes": self.scope_count(),
            "lagging": len(self.lagging),
            "views": self.groups.live_views,
            "views_lingering": len(self.groups.lingering),
            "view_connections": len(self.groups.group_of),
            "view_batches": self.view_batches,
            "view_encodes": self.view_encodes,
            "view_scope_encodes": self.view_scope_encodes,
        }
