"""Live watch of any collection: `?ndjson=true&watch=true[&fields=…&filter=…&since=REV]`.

Lines are Xen Orchestra's `["update", mapped]` and `["remove", mapped]` (mapped as listings
map: the href, or with `fields` an object; a removed object keeps only its `href`), plus xod's
`["revision", N]` after each batch of changes and every `bookmark_interval` when idle. A client
that reconnects with `since=N` gets the net changes it missed (the cache store's
`changes_since`) instead of refetching; a revision outside the history is 410.

A user who may not see everything watches through its view (xod/api/views.py): only objects
it may see, and, when its grants change, an `update` for each object it may now see and a
`remove` for each it no longer may, on the same stream.

The changes go through a subscription `Scope` (xod/api/subscriptions.py), as WebSocket
subscribers' do, and are coalesced per object while the client is slow: what waits is at most
one entry per object, never a growing queue. A write blocked for longer than the WebSocket
subscribers' `max_lag` ends the stream (the client resumes with `since`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from typing import Any

import orjson
from aiohttp import web

from xod.api.access import View
from xod.api.subscriptions import Scope
from xod.api.views import TooManyViews, ViewState, diff, views_of
from xod.cache.store import ChangeBatch, Gone
from xod.server.rest.collections import Collection
from xod.server.rest.context import RestContext
from xod.server.rest.errors import RestError
from xod.server.rest.listing import NDJSON, Mapper, compile_rest_filter
from xod.server.rest.params import ListingQuery
from xod.store import User

log = logging.getLogger("xod.server.rest")

# Lines per write: one write never holds a whole big resume.
LINES_PER_WRITE = 2000
REVISION_HEADER = "X-Xod-Revision"


def _gone(error: Gone) -> RestError:
    return RestError(
        410,
        f"revision {error.revision} is gone: fetch the collection, then watch without since",
        {"revision": error.revision, "oldest": error.oldest, "current": error.current},
    )


class Watch:
    """One watching request: its scope, what changed since the last write, and its writer."""

    def __init__(
        self, rest: RestContext, coll: Collection, query: ListingQuery, user: User
    ) -> None:
        assert coll.xo_type is not None
        compile_rest_filter(query.filter)  # a syntax error is the user's, at its position
        # The collection is a filter term, as Xen Orchestra combines filters.
        spec = f"type:/^{coll.xo_type}$/" + (f" ({query.filter})" if query.filter else "")
        fields = None if query.fields is None or "*" in query.fields else query.fields
        self.xo_type = coll.xo_type
        self.scope = Scope("", spec, fields)
        self.mapper = Mapper(query.fields)
        self.base = f"/rest/v0/{coll.name}/"
        self.rest = rest
        self.pending: dict[str, Any] = {}  # id → object, or None for a removal
        self.revision = 0
        self.wake = asyncio.Event()
        self.stopped = False
        self.user_id = user.id
        self.view = rest.services.access.view_of(user)
        # The view's state while the user may not see everything (None: the whole store).
        self.state: ViewState | None = None
        self._unsubscribe: Any = None
        self._unsubscribe_access: Any = None

    def start(self, since: int | None) -> None:
        """Load the scope, queue what a resuming client missed, and listen: all without
        yielding to the loop, so no batch falls between them."""
        store = self.rest.services.objects
        if since is not None:
            try:
                missed = store.changes_since(since)
            except Gone as error:
                raise _gone(error) from None
        self._follow(self.view)
        if since is not None:
            state = self.state
            if state is not None:
                try:  # what the user saw before its view was made is not known
                    missed = state.resume(missed, since, store)
                except Gone as error:
                    self._stop_following()
                    raise _gone(error) from None
            resumed = self.scope.resume(missed)
            self._queue(resumed.enter, resumed.exit)
        self.revision = store.revision
        self.wake.set()
        self._unsubscribe_access = self.rest.services.access.subscribe(self.on_grants)

    def _follow(self, view: View | None) -> None:
        """Load the scope with what `view` sees and listen to its changes."""
        store = self.rest.services.objects
        self.view = view
        if view is None:
            self.state = None
            self.scope.load(store.by_type(self.xo_type))
            self._unsubscribe = store.subscribe(self.on_batch)
            return
        try:
            self.state = views_of(self.rest.services).acquire(view, self.on_view_batch)
        except TooManyViews as error:
            raise RestError(503, str(error)) from None
        visible = self.state.visible
        self.scope.load({i: o for i, o in store.by_type(self.xo_type).items() if i in visible})

    def _stop_following(self) -> None:
        if self.state is not None:
            views_of(self.rest.services).release(self.state, self.on_view_batch)
            self.state = None
        elif self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = None

    def on_view_batch(self, state: ViewState, batch: ChangeBatch) -> None:
        self.on_batch(batch)

    def on_grants(self, user_ids: frozenset[str] | None) -> None:
        """Grants changed: follow the user's new view, sending what it now sees or not."""
        if user_ids is not None and self.user_id not in user_ids:
            return
        services = self.rest.services
        user = services.store.users.get(self.user_id)
        if user is None:
            self.stop()
            return
        view = services.access.view_of(user)
        if (self.view and self.view.key) == (view and view.key):
            return
        current = self.scope.current
        held = set(current if current is not None else ())
        self._stop_following()
        try:
            self._follow(view)
        except RestError:  # no room for its new view: end the stream
            self.stop()
            return
        now = self.scope.current or {}
        entered, exited = diff(held, now, now)
        self._queue(entered, exited)
        self.revision = services.objects.revision
        self.wake.set()

    def stop(self) -> None:
        """End the stream (xod is shutting down)."""
        self.stopped = True
        self.wake.set()

    def on_batch(self, batch: ChangeBatch) -> None:
        delta = self.scope.apply(batch)
        self._queue(delta.enter, delta.exit)
        self.revision = batch.revision
        self.wake.set()

    def _queue(self, enter: dict[str, Any], exit_ids: list[str]) -> None:
        self.pending.update(enter)
        for object_id in exit_ids:
            self.pending[object_id] = None

    def take(self) -> tuple[dict[str, Any], int]:
        """What changed since the last write, and the revision it brings the client to (taken
        together: a change arriving later belongs to the next write and the next revision)."""
        pending, self.pending = self.pending, {}
        return pending, self.revision

    def encode(self, changes: list[tuple[str, Any]]) -> bytes:
        base, mapper = self.base, self.mapper
        lines = []
        for object_id, obj in changes:
            href = base + object_id
            if obj is None:
                removed = href if mapper.fields is None else {"href": href}
                lines.append(orjson.dumps(["remove", removed]))
            else:
                lines.append(b'["update",' + mapper.encode(obj, href) + b"]")
        return b"\n".join(lines) + b"\n"

    async def run(self, request: web.Request) -> web.StreamResponse:
        live = self.rest.live
        response = web.StreamResponse(
            headers={"Content-Type": NDJSON, REVISION_HEADER: str(self.revision)}
        )
        self.rest.watches.add(self)
        try:
            await response.prepare(request)
            self._limit_send_buffer(request)
            while not self.stopped and request.transport and not request.transport.is_closing():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(live.bookmark_interval):
                        await self.wake.wait()
                self.wake.clear()
                pending, revision = self.take()
                changes = iter(pending.items())
                # Encoded a chunk at a time: a big resume is never all in memory as bytes.
                while chunk := list(itertools.islice(changes, LINES_PER_WRITE)):
                    async with asyncio.timeout(live.max_lag):
                        await response.write(self.encode(chunk))
                async with asyncio.timeout(live.max_lag):
                    await response.write(orjson.dumps(["revision", revision]) + b"\n")
        except TimeoutError:
            log.info("ending a REST watch behind for more than %g s", live.max_lag)
            if request.transport is not None:
                request.transport.abort()  # what it holds would never drain
        except ConnectionError:
            pass  # the client went away
        finally:
            self._stop_following()
            if self._unsubscribe_access is not None:
                self._unsubscribe_access()
            self.rest.watches.discard(self)
        return response

    def _limit_send_buffer(self, request: web.Request) -> None:
        """The socket send buffer WebSocket clients get (ServerConfig.ws_send_buffer)."""
        size = self.rest.send_buffer
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if size is not None and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


async def watch(
    rest: RestContext, request: web.Request, coll: Collection, query: ListingQuery, user: User
) -> web.StreamResponse:
    if coll.xo_type is None:
        raise RestError(400, f"watch=true is not available on {coll.name}")
    stream = Watch(rest, coll, query, user)
    stream.start(query.since)
    return await stream.run(request)
