"""Per-user views of the object cache: which objects the users of one `View` may see, kept up
to date batch by batch, once per view whatever the number of its clients.

A `View` (xod/api/access.py) is what a user may see; users with equal effective grants get
equal views (same `key`) and share one `ViewState` here: the ids visible now (ids only, the
objects stay in the store) and the recent visibility flips (for resumes). Admins and users with
a global read level have no view (None) and never reach this module.

An object's visibility depends only on the grants (fixed per view), its type and its links (the
resolver's `LINK_FIELDS`: a VM's `$container`, a VDI's `$SR` and `$VBDs`…) and, recursively, the
visibility of what they point to. So per batch (`Views.apply`):
- the link index (one for all views) compares each changed object's links with the last ones
  seen: only an object that is new or whose links changed is checked again in each view; any
  other change is one set lookup per view;
- an object whose visibility flips in a view has its dependants (reverse index: target id →
  ids that inherit from it) checked again in that view, transitively: a host becoming visible
  brings its running VMs, then their disks, VIFs and snapshots.

Every read path asks the same question through `visible_to(services, user)`: None for a user
who sees everything, else whether an object id is visible (a set lookup while the view is in
use by a live connection, the resolver otherwise).

Each state hands its view-filtered batch (objects entering or changing, ids leaving) to its
listeners (the fan-out for its WebSocket clients, REST watches). A state with no listener left
is dropped; the number of states is bounded (`MAX_VIEWS`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from xod.acl.resolver import LINK_FIELDS
from xod.api.access import View
from xod.api.services import Services
from xod.cache.store import ChangeBatch, Gone, ObjectStore
from xod.store import User

log = logging.getLogger("xod.server")

# Distinct views kept at once: a view costs a set of the ids it sees (≈60 bytes per id) and a
# visibility check of each new or relinked object per batch. Users with equal grants share one.
MAX_VIEWS = 1000
# Visibility flips remembered per view for resumes (`since`); past it the log restarts and an
# older resume is answered 410 (the client subscribes again, as for a revision out of history).
MAX_FLIPS = 100_000
# A VDI inherits from the VMs its VBDs attach it to (the resolver reads each VBD's VM): the
# index links the VDI to those VMs too, so a VM turning visible re-checks its disks.
THROUGH_FIELDS: Mapping[str, str] = {"$VBDs": "VM"}

GetObject = Callable[[str], Any]
Listener = Callable[["ViewState", ChangeBatch], None]


class TooManyViews(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"too many distinct user views in xod (at most {limit})")
        self.limit = limit


def _targets(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value:
            yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, str) and item:
                yield item


class LinkIndex:
    """For every object: its type and the ids it inherits visibility from, and the reverse."""

    __slots__ = ("_dependants", "_links")

    def __init__(self) -> None:
        self._links: dict[str, tuple[Any, frozenset[str]]] = {}
        self._dependants: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._links)

    @staticmethod
    def links_of(obj: Mapping[str, Any], get: GetObject) -> frozenset[str]:
        found: set[str] = set()
        object_type = obj.get("type")
        fields = LINK_FIELDS.get(object_type, ()) if isinstance(object_type, str) else ()
        for field in fields:
            for target in _targets(obj.get(field)):
                found.add(target)
                through = THROUGH_FIELDS.get(field)
                if through is not None:
                    linked = get(target)
                    if linked is not None:
                        found.update(_targets(linked.get(through)))
        found.discard(obj.get("id"))  # the resolver ignores self-references (pool.$pool)
        return frozenset(found)

    @staticmethod
    def links_through(obj: Mapping[str, Any]) -> bool:
        """Whether `obj` inherits through an object it links to (a VDI through its VBDs)."""
        object_type = obj.get("type")
        fields = LINK_FIELDS.get(object_type, ()) if isinstance(object_type, str) else ()
        return any(field in THROUGH_FIELDS for field in fields)

    def update(self, object_id: str, obj: Mapping[str, Any], get: GetObject) -> bool:
        """Record `obj`'s links; True when its type or links changed (or it is new)."""
        signature = (obj.get("type"), self.links_of(obj, get))
        old = self._links.get(object_id)
        if old == signature:
            return False
        if old is not None:
            self._unlink(object_id, old[1] - signature[1])
            added: Iterable[str] = signature[1] - old[1]
        else:
            added = signature[1]
        for target in added:
            self._dependants.setdefault(target, set()).add(object_id)
        self._links[object_id] = signature
        return True

    def remove(self, object_id: str) -> None:
        old = self._links.pop(object_id, None)
        if old is not None:
            self._unlink(object_id, old[1])

    def _unlink(self, object_id: str, targets: Iterable[str]) -> None:
        for target in targets:
            dependants = self._dependants.get(target)
            if dependants is not None:
                dependants.discard(object_id)
                if not dependants:
                    del self._dependants[target]

    def dependants(self, object_id: str) -> Iterable[str]:
        return self._dependants.get(object_id, ())


class ViewState:
    """One view's visible ids, its listeners, and its recent flips (id → revision)."""

    __slots__ = ("flips", "flips_from", "key", "listeners", "view", "visible")

    def __init__(self, view: View, store: ObjectStore) -> None:
        self.view = view
        self.key = view.key
        get = store.get
        check = view.visible
        self.visible: set[str] = {i for i in store.objects if check(i, get)}
        self.listeners: set[Listener] = set()
        # Flips after `flips_from` are all in `flips`: a resume from there is exact.
        self.flips: dict[str, int] = {}
        self.flips_from = store.revision

    def objects(self, store: ObjectStore) -> dict[str, Any]:
        """The visible objects now, by id."""
        objects = store.objects
        return {i: objects[i] for i in self.visible if i in objects}

    def apply(
        self, batch: ChangeBatch, relinked: set[str], index: LinkIndex, get: GetObject
    ) -> ChangeBatch:
        """Update the visible ids with one batch; what this view's clients must receive."""
        visible = self.visible
        revision = batch.revision
        entered: dict[str, Any] = {}
        exited: list[str] = []
        recheck: list[str] = []
        recheck.extend(relinked)
        for object_id, obj in batch.enter.items():
            if object_id not in relinked and object_id in visible:
                entered[object_id] = obj
        for object_id in batch.exit:
            if object_id in visible:
                visible.discard(object_id)
                exited.append(object_id)
                self.flips[object_id] = revision
                recheck.extend(index.dependants(object_id))
        if recheck:
            self._recheck(recheck, batch.enter, entered, exited, revision, index, get)
        return ChangeBatch(revision, entered, exited)

    def _recheck(
        self,
        queue: list[str],
        changed: Mapping[str, Any],
        entered: dict[str, Any],
        exited: list[str],
        revision: int,
        index: LinkIndex,
        get: GetObject,
    ) -> None:
        """Check these ids again, and the dependants of every one whose visibility flips."""
        visible, check, flips = self.visible, self.view.visible, self.flips
        seen: set[str] = set()
        while queue:
            object_id = queue.pop()
            if object_id in seen:
                continue
            seen.add(object_id)
            obj = get(object_id)
            if obj is None:
                continue
            was = object_id in visible
            now = check(object_id, get)
            if now:
                if not was or object_id in changed:
                    entered[object_id] = obj
                if was:
                    continue
                visible.add(object_id)
            elif was:
                visible.discard(object_id)
                exited.append(object_id)
            else:
                continue
            flips[object_id] = revision
            queue.extend(index.dependants(object_id))
        if len(flips) > MAX_FLIPS:
            flips.clear()
            self.flips_from = revision

    def resume(self, missed: ChangeBatch, since: int, store: ObjectStore) -> ChangeBatch:
        """The store's changes since `since` as this view's clients see them: changed visible
        objects, plus every object whose visibility flipped since (in if visible now, else
        out). Nothing about objects invisible all along. `Gone` if the flips are not known
        that far back (the view was made, or its log restarted, after `since`)."""
        if since < self.flips_from:
            raise Gone(since, self.flips_from, store.revision)
        visible = self.visible
        entered = {i: o for i, o in missed.enter.items() if i in visible}
        exited: list[str] = []
        for object_id, revision in self.flips.items():
            if revision <= since:
                continue
            if object_id in visible:
                obj = store.get(object_id)
                if obj is not None:
                    entered[object_id] = obj
            else:
                exited.append(object_id)
        return ChangeBatch(missed.revision, entered, exited)

    def trim(self, oldest: int) -> None:
        """Forget flips no resume can ask for any more (older than the store's history)."""
        if self.flips and oldest > self.flips_from:
            self.flips = {i: r for i, r in self.flips.items() if r > oldest}
            self.flips_from = oldest


def diff(
    old: Mapping[str, Any] | set[str], new: Mapping[str, Any], objects: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """What a client holding `old` (ids) must receive to hold `new`: entering objects, exits."""
    entered = {i: objects[i] for i in new if i not in old and i in objects}
    exited = [i for i in old if i not in new]
    return entered, exited


class Views:
    """Every view in use: their states, the shared link index, one store listener."""

    def __init__(self, store: ObjectStore, max_views: int = MAX_VIEWS) -> None:
        self.store = store
        self.max_views = max_views
        self.states: dict[str, ViewState] = {}
        self.index = LinkIndex()
        self._unsubscribe: Callable[[], None] | None = None
        self.batches = 0

    def acquire(self, view: View, listener: Listener) -> ViewState:
        """The state of `view` (made and loaded if new) with `listener` added to it."""
        state = self.states.get(view.key)
        if state is None:
            if len(self.states) >= self.max_views:
                raise TooManyViews(self.max_views)
            if self._unsubscribe is None:
                self._start()
            state = self.states[view.key] = ViewState(view, self.store)
        state.listeners.add(listener)
        return state

    def release(self, state: ViewState, listener: Listener) -> None:
        state.listeners.discard(listener)
        if not state.listeners and self.states.get(state.key) is state:
            del self.states[state.key]
            if not self.states:
                self._stop()

    def visible_ids(self, view: View) -> Callable[[str], bool]:
        """Whether an object is visible in `view`: a set lookup when the view is in use,
        else the resolver (a one-off read by a user with no live connection)."""
        state = self.states.get(view.key)
        if state is not None:
            return state.visible.__contains__
        get, check = self.store.get, view.visible
        return lambda object_id: check(object_id, get)

    # -- per batch ------------------------------------------------------------------------------

    def _start(self) -> None:
        store, index = self.store, self.index
        for object_id, obj in store.objects.items():
            index.update(object_id, obj, store.get)
        self._unsubscribe = store.subscribe(self.apply)

    def _stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.index = LinkIndex()

    def apply(self, batch: ChangeBatch) -> None:
        self.batches += 1
        store, index = self.store, self.index
        get = store.get
        for object_id in batch.exit:
            index.remove(object_id)
        relinked = {i for i, o in batch.enter.items() if index.update(i, o, get)}
        # A VDI links through its VBDs to their VMs: a VBD that came or changed can relink a
        # VDI that did not change itself.
        for object_id in list(relinked):
            for dependant in list(index.dependants(object_id)):
                obj = get(dependant)
                if obj is None or not index.links_through(obj):
                    continue
                if index.update(dependant, obj, get):
                    relinked.add(dependant)
        trim = self.batches % 256 == 0
        for state in list(self.states.values()):
            delta = state.apply(batch, relinked, index, get)
            if trim:
                state.trim(store.oldest_revision)
            if delta:
                for listener in list(state.listeners):
                    try:
                        listener(state, delta)
                    except Exception:
                        log.exception("view listener failed")


def views_of(services: Services) -> Views:
    """The daemon's views (shared by the fan-out, REST watches and one-off reads)."""
    return services.state(Views, lambda: Views(services.objects))


def visible_to(services: Services, user: User | None) -> Callable[[str], bool] | None:
    """Whether `user` may see an object, by id; None when it sees everything (nothing is
    visible without a user)."""
    if user is None:
        return lambda _object_id: False
    view = services.access.view_of(user)
    return None if view is None else views_of(services).visible_ids(view)
