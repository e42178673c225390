"""Subscription scopes (pure, no I/O): which objects a `(filter, fields)` pair selects, and how
one store change batch looks through it.

Every subscription with the same filter and fields shares one `Scope`: the filter runs once per
object per batch, projection happens once, and the fan-out encodes the result once. A scope
keeps its current view (id → projected object), so an object that stops matching leaves with
an `exit` and a new subscriber's snapshot costs a dict copy, not a pass over the store.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import Any

import orjson

from xod.cache.store import ChangeBatch, ObjectStore
from xod.filters import candidate_types, compile_filter, parse

Predicate = Callable[[Any], bool]
Projection = Callable[[Mapping[str, Any]], dict[str, Any]]


def compile_projection(fields: Sequence[str] | None) -> Projection | None:
    """`["id", "CPUs.number"]` → a function keeping only those (dotted) paths of an object."""
    if not fields:
        return None
    tree: dict[str, Any] = {}
    for path in fields:
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is True:
                break  # an ancestor is already taken whole
            node = node.setdefault(part, {})
        else:
            node[parts[-1]] = True

    def project(value: Mapping[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, sub in spec.items():
            if key not in value:
                continue
            item = value[key]
            if sub is True:
                out[key] = item
            elif isinstance(item, Mapping):
                out[key] = project(item, sub)
        return out

    return lambda obj: project(obj, tree)


def scope_key(filter_spec: Any, fields: Sequence[str] | None) -> str:
    """A canonical key: equal (filter, fields) pairs share a scope."""
    return orjson.dumps(
        [filter_spec, list(fields) if fields else None], option=orjson.OPT_SORT_KEYS
    ).decode()


class Delta:
    """What a scope's subscribers must receive for one batch."""

    __slots__ = ("enter", "exit", "revision")

    def __init__(self, revision: int, enter: dict[str, Any], exit_ids: list[str]) -> None:
        self.revision = revision
        self.enter = enter
        self.exit = exit_ids

    def __bool__(self) -> bool:
        return bool(self.enter) or bool(self.exit)


class Scope:
    def __init__(self, key: str, filter_spec: Any, fields: Sequence[str] | None) -> None:
        self.key = key
        # As given: a client moving to another view gets a scope of the same filter and fields.
        self.filter_spec = filter_spec
        self.fields = fields
        # Parsed once: the node is both the predicate and what pins the candidate types.
        self._parsed: Any = parse(filter_spec) if isinstance(filter_spec, str) else filter_spec
        self.predicate: Predicate | None = None
        if filter_spec:
            self.predicate = (
                self._parsed.match if isinstance(filter_spec, str) else compile_filter(filter_spec)
            )
        self.projection = compile_projection(fields)
        # What the subscribers hold now, id → (projected) object, kept up to date batch by
        # batch: a snapshot is a copy of it, and leaving the filter is `id in current`.
        # None when the scope is the whole store unchanged (the store is that view).
        self.current: dict[str, Any] | None = (
            None if self.predicate is None and self.projection is None else {}
        )
        self.subscriptions: dict[str, Any] = {}

    def view(self, obj: Mapping[str, Any]) -> Any:
        return obj if self.projection is None else self.projection(obj)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return self.predicate is None or self.predicate(obj)

    def load(self, objects: Mapping[str, Any]) -> None:
        """Start from these objects (all the store's, or all those of the scope's type)."""
        self._fill((objects,))

    def load_store(self, store: ObjectStore, visible: Container[str] | None = None) -> None:
        """Start from the store's current objects (those of `visible` only, when given),
        scanning only the types the filter can match (`type:/^VM$/` reads 10k VMs, not the
        48k objects of a big pool)."""
        if self.current is None:
            return
        types = candidate_types(self._parsed, store.types()) if self.predicate else None
        sources = (store.objects,) if types is None else map(store.by_type, sorted(types))
        self._fill(sources, visible)

    def _fill(
        self, sources: Iterable[Mapping[str, Any]], visible: Container[str] | None = None
    ) -> None:
        if self.current is not None:
            view, matches = self.view, self.matches
            self.current = {
                i: view(o)
                for s in sources
                for i, o in s.items()
                if (visible is None or i in visible) and matches(o)
            }

    def snapshot(self, objects: Mapping[str, Any]) -> dict[str, Any]:
        """The matching objects now, projected (a shallow copy: objects are never mutated)."""
        return dict(objects if self.current is None else self.current)

    def apply(self, batch: ChangeBatch) -> Delta:
        """Update the scope's view with one batch and return what subscribers must see."""
        current = self.current
        if current is None:
            return Delta(batch.revision, batch.enter, batch.exit)
        matches, view = self.matches, self.view
        # Projected, an object often looks the same after a change to a field not kept
        # (a VM's memory usage under `fields: ["name_label"]`): not sent again.
        projected = self.projection is not None
        entered: dict[str, Any] = {}
        exited: list[str] = []
        for object_id, obj in batch.enter.items():
            if matches(obj):
                seen = view(obj)
                if projected and current.get(object_id) == seen:
                    continue
                entered[object_id] = current[object_id] = seen
            elif current.pop(object_id, None) is not None:
                exited.append(object_id)
        for object_id in batch.exit:
            if current.pop(object_id, None) is not None:
                exited.append(object_id)
        return Delta(batch.revision, entered, exited)

    def resume(self, missed: ChangeBatch) -> Delta:
        """The net changes since a client's revision, through this scope. An object that no
        longer matches is sent as an exit: the client may hold it (deleting is idempotent).
        Missed exits are all sent, whatever the filter: the history keeps ids only, and what an
        object was at the client's revision (its type can change: VM → template) is gone."""
        entered: dict[str, Any] = {}
        exited = list(missed.exit)
        current = self.current
        for object_id, obj in missed.enter.items():
            if current is None:
                entered[object_id] = obj
            elif object_id in current:
                entered[object_id] = current[object_id]
            else:
                exited.append(object_id)
        return Delta(missed.revision, entered, exited)
