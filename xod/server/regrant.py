"""Moving connections to their user's new view when grants change (an ACL added or removed, a
group's members, a user's permission, a resource set), live, without reconnecting.

Each moved connection gets the difference between what it saw and what it may see now: on the
`all` stream XO's `enter` for the objects it may now see and `exit` for those it no longer may,
and on each subscription the same as `xod.changes` through the subscription's filter and
fields. Connections moving the same way (same old and new view, same format) share the `all`
frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xod.api.access import View
from xod.api.errors import ApiError
from xod.api.views import diff
from xod.server.changes import Subscription
from xod.server.frames import WireFormat
from xod.server.peer import Peer
from xod.server.view_groups import ViewGroup

if TYPE_CHECKING:
    from xod.server.fanout import Fanout

Move = tuple[str | None, str | None, WireFormat]


@dataclass
class Moves:
    """What the moves of one regrant share: each view's contents (built once, not once per
    connection), and the `all` frames of each way (old view, new view, format)."""

    contents: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    frames: dict[Move, list[bytes]] = field(default_factory=dict)

    def contents_of(self, fanout: Fanout, group: ViewGroup | None) -> Mapping[str, Any]:
        """What a connection of `group` holds (the whole cache for none)."""
        store = fanout.store
        if group is None:
            return store.objects
        found = self.contents.get(group.key)
        if found is None:
            found = self.contents[group.key] = group.state.objects(store)
        return found


def regrant(fanout: Fanout, user_ids: Iterable[str] | None) -> None:
    """Move the connections of these users (None: everyone's) whose view changed."""
    groups = fanout.groups
    wanted = None if user_ids is None else set(user_ids)
    views: dict[str, tuple[bool, View | None]] = {}
    moves = Moves()
    for peer in groups.peers_of(wanted):
        user_id = groups.user_of[peer]
        found = views.get(user_id)
        if found is None:
            found = views[user_id] = groups.current_view(user_id)
        exists, view = found
        if not exists:
            continue  # deleted: its sessions are being closed
        move(fanout, peer, view, moves)


def move(fanout: Fanout, peer: Peer, view: View | None, moves: Moves | None = None) -> None:
    """Move `peer` to the group of `view`, if not there already."""
    old = fanout.groups.group_of.get(peer)
    if (None if old is None else old.key) == (None if view is None else view.key):
        return
    if moves is None:
        moves = Moves()
    store = fanout.store
    receives_all = fanout.receives_all(peer)
    subscriptions: list[Subscription] = list(fanout.subscriptions_of(peer))
    # What the connection holds now, per stream, before leaving its group.
    held_before = moves.contents_of(fanout, old)
    seen: list[set[str]] = []
    for subscription in subscriptions:
        seen.append(set(subscription.scope.snapshot(held_before)))
        fanout.detach_subscription(subscription)
    fanout.leave_all(peer)
    fanout.groups.leave(peer, fanout.on_view_batch)
    new = fanout.join_group(peer, view)
    if peer.closed:
        return
    revision = store.revision
    now = moves.contents_of(fanout, new)
    if receives_all:
        way = (None if old is None else old.key, None if new is None else new.key, peer.fmt)
        entered, exited = diff(held_before, now, store.objects)
        frames = moves.frames.get(way)
        if frames is None:
            frames = moves.frames[way] = fanout.all_stream.frames(peer.fmt, entered, exited)
        fanout.join_all(peer)
        if frames:
            peer.send_changes(fanout.all_stream, frames, entered, exited, revision)
    for subscription, held in zip(subscriptions, seen, strict=True):
        try:
            scope = fanout.scope_for(new, subscription.scope.filter_spec, subscription.scope.fields)
        except ApiError:  # too many scopes: this subscription ends
            fanout.unsubscribe(peer, subscription.id)
            continue
        subscription.scope = scope
        subscription.group = new
        scope.subscriptions[subscription.id] = subscription
        if not subscription.active:
            continue  # its snapshot is not out yet: it will be taken from the new scope
        snapshot = scope.snapshot(now)
        entered, exited = diff(held, snapshot, snapshot)
        if entered or exited:
            frames = list(subscription.frames(peer.fmt, revision, entered, exited))
            peer.send_changes(subscription, frames, entered, exited, revision)
