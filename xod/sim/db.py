"""The simulated pool database: records by class and ref, generations, change log, tombstones.

Every write bumps the database generation and moves the object to the end of an ordered change
log, so "what changed since generation g" is a walk from the log's end that stops at g: its
cost follows the number of changes, not the pool size (event.from on a 10k-VM pool under churn).
Deleted objects leave a bounded tombstone; a token older than a trimmed tombstone can no longer
be answered exactly and gets EVENTS_LOST.

Records are plain dicts of wire-ready values. Stored containers are never mutated in place
(writes replace them), so a shallow `dict(record)` is a consistent snapshot.

Messages (`message` class) are not DB rows in xapi: they live in their own store with their own
generation (the token's second half).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import Any

from xod.sim.errors import XapiFailure
from xod.sim.schema import CLASSES, RELATIONS, SILENT_CLASSES
from xod.sim.values import NULL_REF, new_ref

# Called for each change: (generation, class, ref, operation, snapshot) — snapshot None on del
# only when the record is unknown.
ChangeListener = Callable[[int, str, str, str, dict[str, Any]], None]

_FORWARD: dict[str, list[tuple[str, str, str]]] = {}
for (_cls, _field), (_other, _other_field) in RELATIONS.items():
    _FORWARD.setdefault(_cls, []).append((_field, _other, _other_field))

DB_CLASSES = tuple(cls for cls in CLASSES if cls != "message")


class Database:
    def __init__(self, tombstone_limit: int = 20_000, message_limit: int = 10_000) -> None:
        self.tables: dict[str, dict[str, dict[str, Any]]] = {cls: {} for cls in CLASSES}
        self.uuids: dict[str, dict[str, str]] = {cls: {} for cls in CLASSES}
        self.generation = 0
        self._log: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._created: dict[str, int] = {}
        self._tombstones: deque[tuple[int, str, str, int]] = deque()
        self._tombstone_limit = tombstone_limit
        # A token below this generation may have missed a trimmed deletion.
        self.lost_before = 0
        self.message_generation = 0
        self._message_log: OrderedDict[str, int] = OrderedDict()
        self._message_tombstones: deque[tuple[int, str, int]] = deque()
        self._message_limit = message_limit
        self.message_lost_before = 0
        self.listeners: list[ChangeListener] = []
        self._wakeup: asyncio.Event | None = None

    # ---------------------------------------------------------------- reads

    def get(self, cls: str, ref: Any) -> dict[str, Any]:
        record = self.tables[cls].get(ref) if isinstance(ref, str) else None
        if record is None:
            raise XapiFailure("HANDLE_INVALID", cls, ref)
        return record

    def find(self, cls: str, ref: str) -> dict[str, Any] | None:
        return self.tables[cls].get(ref)

    def by_uuid(self, cls: str, uuid: str) -> str:
        ref = self.uuids[cls].get(uuid)
        if ref is None:
            raise XapiFailure("UUID_INVALID", cls, uuid)
        return ref

    def counts(self) -> dict[str, int]:
        return {cls: len(self.tables[cls]) for cls in DB_CLASSES}

    # ---------------------------------------------------------------- bulk load (workload builder)

    def load(self, cls: str, ref: str, record: dict[str, Any]) -> None:
        """Store a record as created now, with no relation upkeep and no listeners: the builder
        calls `rebuild_reverse_references` once at the end."""
        self.tables[cls][ref] = record
        self.uuids[cls][record["uuid"]] = ref
        if cls == "message":
            self.message_generation += 1
            self._message_log[ref] = self.message_generation
        elif cls not in SILENT_CLASSES:
            self.generation += 1
            self._log[ref] = (self.generation, cls)
            self._created[ref] = self.generation

    def rebuild_reverse_references(self) -> None:
        gathered: dict[tuple[str, str], dict[str, list[str]]] = {}
        for (cls, fld), (other, other_field) in RELATIONS.items():
            targets = gathered.setdefault((other, other_field), {})
            for ref, record in self.tables[cls].items():
                target = record[fld]
                if target != NULL_REF:
                    targets.setdefault(target, []).append(ref)
        for (other, other_field), targets in gathered.items():
            for ref, record in self.tables[other].items():
                record[other_field] = targets.get(ref, [])

    # ---------------------------------------------------------------- writes

    def insert(self, cls: str, record: dict[str, Any], ref: str | None = None) -> str:
        ref = ref or new_ref()
        self.tables[cls][ref] = record
        self.uuids[cls][record["uuid"]] = ref
        for fld, other, other_field in _FORWARD.get(cls, ()):
            target = record[fld]
            if target != NULL_REF:
                self._add_to_set(other, target, other_field, ref)
        if cls == "message":
            self.message_generation += 1
            self._message_log[ref] = self.message_generation
            self._notify(self.message_generation, cls, ref, "add", record)
        else:
            self._changed(cls, ref, "add", record)
        return ref

    def update(self, cls: str, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        record = self.get(cls, ref)
        for fld, other, other_field in _FORWARD.get(cls, ()):
            if fld in changes and changes[fld] != record[fld]:
                if record[fld] != NULL_REF:
                    self._remove_from_set(other, record[fld], other_field, ref)
                if changes[fld] != NULL_REF:
                    self._add_to_set(other, changes[fld], other_field, ref)
        record.update(changes)
        self._changed(cls, ref, "mod", record)
        return record

    def touch(self, cls: str, ref: str) -> int:
        """Record a change of the row without changing it (event.inject); its generation."""
        self._changed(cls, ref, "mod", self.get(cls, ref))
        return self.generation

    def delete(self, cls: str, ref: str) -> dict[str, Any]:
        record = self.get(cls, ref)
        del self.tables[cls][ref]
        self.uuids[cls].pop(record["uuid"], None)
        for fld, other, other_field in _FORWARD.get(cls, ()):
            if record[fld] != NULL_REF:
                self._remove_from_set(other, record[fld], other_field, ref)
        if cls == "message":
            self.message_generation += 1
            self._message_log.pop(ref, None)
            self._message_tombstones.append((self.message_generation, ref, 0))
            if len(self._message_tombstones) > self._message_limit:
                self.message_lost_before = self._message_tombstones.popleft()[0]
            self._notify(self.message_generation, cls, ref, "del", record)
        else:
            self._changed(cls, ref, "del", record)
        return record

    def _add_to_set(self, cls: str, ref: str, fld: str, item: str) -> None:
        record = self.tables[cls].get(ref)
        if record is not None and item not in record[fld]:
            record[fld] = [*record[fld], item]
            self._changed(cls, ref, "mod", record)

    def _remove_from_set(self, cls: str, ref: str, fld: str, item: str) -> None:
        record = self.tables[cls].get(ref)
        if record is not None and item in record[fld]:
            record[fld] = [value for value in record[fld] if value != item]
            self._changed(cls, ref, "mod", record)

    def _changed(self, cls: str, ref: str, operation: str, record: dict[str, Any]) -> None:
        if cls in SILENT_CLASSES:
            return
        self.generation += 1
        generation = self.generation
        if operation == "del":
            self._log.pop(ref, None)
            created = self._created.pop(ref, 0)
            self._tombstones.append((generation, cls, ref, created))
            if len(self._tombstones) > self._tombstone_limit:
                # Trim to half at once (as xapi's 512 -> 256) so trimming stays rare.
                while len(self._tombstones) > self._tombstone_limit // 2:
                    self.lost_before = self._tombstones.popleft()[0]
        else:
            self._log[ref] = (generation, cls)
            self._log.move_to_end(ref)
            if operation == "add":
                self._created[ref] = generation
        self._notify(generation, cls, ref, operation, record)

    def _notify(
        self, generation: int, cls: str, ref: str, operation: str, record: dict[str, Any]
    ) -> None:
        if self.listeners:
            snapshot = dict(record)
            for listener in self.listeners:
                listener(generation, cls, ref, operation, snapshot)
        self.wake()

    # ---------------------------------------------------------------- change queries

    def changes_since(self, generation: int) -> Iterator[tuple[int, str, str, bool]]:
        """(generation, class, ref, created_after) of live objects changed after `generation`,
        newest first."""
        created = self._created
        for ref, (gen, cls) in reversed(self._log.items()):
            if gen <= generation:
                return
            yield gen, cls, ref, created.get(ref, 0) > generation

    def deletions_since(self, generation: int) -> Iterator[tuple[int, str, str]]:
        """(generation, class, ref) of objects deleted after `generation` that existed then."""
        for gen, cls, ref, created in reversed(self._tombstones):
            if gen <= generation:
                return
            if created <= generation:
                yield gen, cls, ref

    def message_changes_since(self, generation: int) -> Iterator[tuple[str, str]]:
        """(operation, ref) of messages added/deleted after `generation`."""
        for ref, gen in reversed(self._message_log.items()):
            if gen <= generation:
                break
            yield "add", ref
        for gen, ref, _created in reversed(self._message_tombstones):
            if gen <= generation:
                break
            yield "del", ref

    # ---------------------------------------------------------------- waiting

    def wake(self) -> None:
        """Wake every waiter (a change happened, or a session went away)."""
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def wakeup_event(self) -> asyncio.Event:
        """An event set at the next change; wait on it after a look found nothing."""
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        return self._wakeup
