"""The revisioned object store (pure, no I/O).

Objects by id, indexed by type and by pool. Every applied change set becomes one `ChangeBatch`
with the net effect per id; the revision goes up by one per batch. A bounded history of batches
lets a subscriber resume from an older revision (`changes_since`) or learn it must resync
(`Gone`). In a cluster (xod/cluster/replica.py) every batch comes with its revision, the
change log's sequence number, the same on every instance: revisions then go up with gaps, and
a batch whose changes were already here only moves the revision on (`advance`). Listeners
are called synchronously with each batch, after the store is updated.

The history keeps only ids, not objects: a resumed subscriber gets each entered object's current
version, which is the net effect it needs, and old object versions are not kept alive.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xod.cache.encoded import EncodedObjects
from xod.cache.objects.values import Changes, XoObject

log = logging.getLogger(__name__)

Listener = Callable[["ChangeBatch"], Any]


class Gone(Exception):
    """The requested revision is outside the history window: the subscriber must resync."""

    def __init__(self, revision: int, oldest: int, current: int) -> None:
        super().__init__(f"revision {revision} is gone (history covers {oldest}..{current})")
        self.revision = revision
        self.oldest = oldest
        self.current = current


@dataclass(slots=True)
class ChangeBatch:
    """The net changes of one revision: objects entered (added or updated), ids exited."""

    revision: int
    enter: dict[str, XoObject] = field(default_factory=dict)
    exit: list[str] = field(default_factory=list)
    pool_id: str | None = None

    def __len__(self) -> int:
        return len(self.enter) + len(self.exit)

    def __bool__(self) -> bool:
        return bool(self.enter) or bool(self.exit)


@dataclass(slots=True)
class _HistoryEntry:
    revision: int
    time: float
    entered: tuple[str, ...]
    exited: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.entered) + len(self.exited)


class ObjectStore:
    def __init__(
        self,
        *,
        history_seconds: float = 75.0,
        history_changes: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.history_seconds = history_seconds
        self.history_changes = history_changes
        self._clock = clock
        self.revision = 0
        self._objects: dict[str, XoObject] = {}
        self._by_type: dict[str, dict[str, XoObject]] = {}
        self._by_pool: dict[str, dict[str, XoObject]] = {}
        self._history: deque[_HistoryEntry] = deque()
        self._history_total = 0
        # Revisions up to this one are no longer resumable.
        self._history_base = 0
        self._listeners: list[Listener] = []
        # Each object's JSON, made when first listed (xod/cache/encoded.py).
        self.encoded = EncodedObjects(self)

    # -- reads ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._objects

    def get(self, object_id: str) -> XoObject | None:
        return self._objects.get(object_id)

    @property
    def objects(self) -> Mapping[str, XoObject]:
        """Every object by id (read-only by contract)."""
        return self._objects

    def by_type(self, object_type: str) -> Mapping[str, XoObject]:
        return self._by_type.get(object_type, {})

    def by_pool(self, pool_id: str) -> Mapping[str, XoObject]:
        return self._by_pool.get(pool_id, {})

    def types(self) -> list[str]:
        return [t for t, objects in self._by_type.items() if objects]

    def pools(self) -> list[str]:
        return [p for p, objects in self._by_pool.items() if objects]

    @property
    def oldest_revision(self) -> int:
        """The oldest revision a subscriber can still resume from."""
        return self._history_base

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(batch)` after every change; returns the unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            try:
                self._listeners.remove(listener)
            except ValueError:
                pass

        return unsubscribe

    def changes_since(self, revision: int) -> ChangeBatch:
        """Net changes after `revision` up to the current one; `Gone` outside the history."""
        if revision > self.revision or revision < self._history_base:
            raise Gone(revision, self._history_base, self.revision)
        net: dict[str, bool] = {}
        for entry in reversed(self._history):
            if entry.revision <= revision:
                break
            # Walk newest first: the first action seen for an id is its net one.
            for object_id in entry.exited:
                net.setdefault(object_id, False)
            for object_id in entry.entered:
                net.setdefault(object_id, True)
        batch = ChangeBatch(self.revision)
        objects = self._objects
        for object_id, entered in net.items():
            obj = objects.get(object_id) if entered else None
            if obj is None:
                batch.exit.append(object_id)
            else:
                batch.enter[object_id] = obj
        return batch

    # -- writes --------------------------------------------------------------------------------

    def apply(
        self, pool_id: str, changes: Changes, revision: int | None = None
    ) -> ChangeBatch | None:
        """Apply one change set of a pool (None = exit): the batch, or None if nothing changed.
        `revision`: the batch's revision, given by the change log (greater than the current
        one); by default the next one."""
        if revision is not None and revision <= self.revision:
            raise ValueError(f"revision {revision} is not after {self.revision}")
        enter: dict[str, XoObject] = {}
        exits: list[str] = []
        objects = self._objects
        for object_id, obj in changes.items():
            old = objects.get(object_id)
            if obj is None:
                if old is not None:
                    self._remove(object_id, old)
                    exits.append(object_id)
            elif old is None or (old is not obj and old != obj):
                self._put(pool_id, object_id, obj, old)
                enter[object_id] = obj
        if not enter and not exits:
            if revision is not None:
                self.advance(revision)
            return None
        return self._commit(ChangeBatch(revision or self.revision + 1, enter, exits, pool_id))

    def advance(self, revision: int) -> None:
        """The change log moved on without changing anything here: the revision follows it
        (a resume from any revision up to it is the same as from the one before)."""
        if revision > self.revision:
            self.revision = revision

    def replace_pool(self, pool_id: str, objects: Mapping[str, XoObject]) -> ChangeBatch | None:
        """Resync: make the pool's objects exactly `objects`, emitting only the differences."""
        changes: Changes = dict.fromkeys(
            (i for i in self._by_pool.get(pool_id, {}) if i not in objects), None
        )
        changes.update(objects)
        return self.apply(pool_id, changes)

    def drop_pool(self, pool_id: str) -> ChangeBatch | None:
        """Every object of the pool exits."""
        return self.apply(pool_id, dict.fromkeys(self._by_pool.get(pool_id, {}), None))

    # -- internals -----------------------------------------------------------------------------

    def _put(self, pool_id: str, object_id: str, obj: XoObject, old: XoObject | None) -> None:
        if old is not None and old["type"] != obj["type"]:
            self._by_type[old["type"]].pop(object_id, None)
        self._objects[object_id] = obj
        by_type = self._by_type.get(obj["type"])
        if by_type is None:
            by_type = self._by_type[obj["type"]] = {}
        by_type[object_id] = obj
        by_pool = self._by_pool.get(pool_id)
        if by_pool is None:
            by_pool = self._by_pool[pool_id] = {}
        by_pool[object_id] = obj

    def _remove(self, object_id: str, old: XoObject) -> None:
        del self._objects[object_id]
        by_type = self._by_type.get(old["type"])
        if by_type is not None:
            by_type.pop(object_id, None)
        by_pool = self._by_pool.get(old.get("$pool"))  # type: ignore[arg-type]  # None finds none
        if by_pool is not None:
            by_pool.pop(object_id, None)

    def _commit(self, batch: ChangeBatch) -> ChangeBatch:
        self.revision = batch.revision
        now = self._clock()
        entry = _HistoryEntry(batch.revision, now, tuple(batch.enter), tuple(batch.exit))
        self._history.append(entry)
        self._history_total += entry.size
        self._trim(now)
        for listener in tuple(self._listeners):
            try:
                listener(batch)
            except Exception:
                log.exception("store listener failed")
        return batch

    def _trim(self, now: float) -> None:
        # Drop the oldest batch only when the history stays beyond BOTH bounds without it.
        history = self._history
        while len(history) > 1:
            oldest = history[0]
            if now - oldest.time <= self.history_seconds:
                break
            if self._history_total - oldest.size < self.history_changes:
                break
            history.popleft()
            self._history_total -= oldest.size
            self._history_base = oldest.revision


def replay(batches: Iterable[ChangeBatch]) -> dict[str, XoObject]:
    """Objects obtained by applying batches in order to an empty state (checks and tests)."""
    state: dict[str, XoObject] = {}
    for batch in batches:
        state.update(batch.enter)
        for object_id in batch.exit:
            state.pop(object_id, None)
    return state
