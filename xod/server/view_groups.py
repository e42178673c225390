"""The fan-out's signed-in connections grouped by their user's view (xod/api/views.py).

A connection whose user sees everything (admin, or a global read/write level) is in no group:
it stays on the fan-out's unfiltered path, untouched. Every other connection is in the group of
its view: the group's `all` receivers (per wire format) get the view's filtered batch encoded
once per format, and its subscription scopes are keyed by (view, filter, fields). A group
lives while one of its connections does, and `linger` seconds after the last one left: a client
that reconnects meanwhile (a network blip, a reload) resumes with `since` instead of being told
410. At the view bound, lingering groups make room before any connection is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from xod.api.access import Access, View
from xod.api.views import Listener, Views, ViewState
from xod.server.frames import FORMATS, WireFormat
from xod.server.peer import Peer
from xod.store import User

UserLookup = Callable[[str], User | None]


class ViewGroup:
    __slots__ = ("peers", "receivers", "scopes", "state")

    def __init__(self, state: ViewState) -> None:
        self.state = state
        self.peers: set[Peer] = set()
        self.receivers: dict[WireFormat, set[Peer]] = {fmt: set() for fmt in FORMATS}
        # scope_key → Scope, each scope holding only this view's objects.
        self.scopes: dict[str, Any] = {}

    @property
    def key(self) -> str:
        return self.state.key


class ViewGroups:
    def __init__(
        self, views: Views, access: Access | None, users: UserLookup | None, linger: float = 0.0
    ) -> None:
        self.views = views
        self.access = access
        self.users = users
        self.linger = linger
        self.by_key: dict[str, ViewGroup] = {}
        self.group_of: dict[Peer, ViewGroup] = {}
        self.user_of: dict[Peer, str] = {}
        # Groups with no connection left, oldest first: key → the timer that drops them.
        self.lingering: dict[str, asyncio.TimerHandle] = {}

    def view_of(self, user: User) -> View | None:
        return None if self.access is None else self.access.view_of(user)

    def current_view(self, user_id: str) -> tuple[bool, View | None]:
        """(whether the user still exists, its view now)."""
        user = self.users(user_id) if self.users is not None else None
        if user is None:
            return False, None
        return True, self.view_of(user)

    def join(self, peer: Peer, view: View | None, listener: Listener) -> ViewGroup | None:
        """Put `peer` in the group of `view` (None: no group). Raises TooManyViews."""
        if view is None:
            return None
        group = self.by_key.get(view.key)
        if group is None:
            while self.lingering and len(self.views.states) >= self.views.max_views:
                self._drop(next(iter(self.lingering)), listener)
            state = self.views.acquire(view, listener)
            group = self.by_key[view.key] = ViewGroup(state)
        else:
            timer = self.lingering.pop(group.key, None)
            if timer is not None:
                timer.cancel()
        group.peers.add(peer)
        self.group_of[peer] = group
        return group

    def leave(self, peer: Peer, listener: Listener) -> ViewGroup | None:
        """Take `peer` out of its group (dropped, with its view state, `linger` seconds after
        it is empty)."""
        group = self.group_of.pop(peer, None)
        if group is None:
            return None
        group.peers.discard(peer)
        for receivers in group.receivers.values():
            receivers.discard(peer)
        if not group.peers:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # tearing down: nothing will reconnect
                loop = None
            if self.linger > 0 and loop is not None:
                self.lingering[group.key] = loop.call_later(
                    self.linger, self._drop, group.key, listener
                )
            else:
                self._drop(group.key, listener)
        return group

    def _drop(self, key: str, listener: Listener) -> None:
        timer = self.lingering.pop(key, None)
        if timer is not None:
            timer.cancel()
        group = self.by_key.pop(key, None)
        if group is not None:
            self.views.release(group.state, listener)

    @property
    def live_views(self) -> int:
        return len(self.by_key) - len(self.lingering)

    def peers_of(self, user_ids: set[str] | None) -> list[Peer]:
        return [p for p, u in self.user_of.items() if user_ids is None or u in user_ids]
