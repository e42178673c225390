"""Events: event.from (state-based, coalesced, long-polling), event.inject, and the legacy
event.register / event.next / event.unregister / event.get_current_id queues."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xod.sim.db import Database
from xod.sim.errors import XapiFailure
from xod.sim.registry import Registry
from xod.sim.schema import CLASS_BY_LOWER, CLASSES
from xod.sim.sessions import Sessions
from xod.sim.values import Int32

if TYPE_CHECKING:
    from xod.sim.dispatch import Call
    from xod.sim.pool import SimConfig

_LOWER = {name: name.lower() for name in CLASSES}
_FOREVER = 86400.0  # a timeout that is no time span means 24 h in xapi


def format_token(generation: int, message_generation: int) -> str:
    return f"{generation:020d},{message_generation:020d}"


def parse_token(token: str) -> tuple[int, int] | None:
    """(generation, message generation); None for "" (from the beginning)."""
    if token == "":
        return None
    parts = token.split(",")
    try:
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
        if len(parts) == 1:
            return int(parts[0]), 0
    except ValueError:
        pass
    raise XapiFailure("EVENT_FROM_TOKEN_PARSE_FAILURE", token)


@dataclass
class _Subscription:
    everything: bool = False
    classes: set[str] = field(default_factory=set)  # lower-case
    objects: set[tuple[str, str]] = field(default_factory=set)  # (lower class, ref)

    @classmethod
    def parse(cls, names: list[Any]) -> _Subscription:
        subscription = cls()
        for name in names:
            text = str(name)
            if text == "*":
                subscription.everything = True
            elif "/" in text:
                klass, ref = text.split("/", 1)
                subscription.objects.add((klass.lower(), ref))
            else:
                subscription.classes.add(text.lower())  # unknown classes simply never match
        return subscription

    def wants(self, lower: str, ref: str) -> bool:
        return (
            self.everything
            or lower in self.classes
            or (bool(self.objects) and (lower, ref) in self.objects)
        )

    @property
    def wants_messages(self) -> bool:
        return self.everything or "message" in self.classes


@dataclass
class _LegacyQueue:
    classes: set[str] = field(default_factory=set)
    events: deque[dict[str, Any]] = field(default_factory=deque)
    lost: bool = False


class Events:
    def __init__(self, db: Database, sessions: Sessions, config: SimConfig) -> None:
        self._db = db
        self._sessions = sessions
        self._config = config
        self._lost_sessions: set[str] = set()
        self._legacy: dict[str, _LegacyQueue] = {}
        sessions.on_removed.append(self._session_removed)

    def register(self, registry: Registry) -> None:
        registry.add(
            "event.from",
            [("classes", "set"), ("token", "string"), ("timeout", "float")],
            self.event_from,
        )
        registry.add("event.inject", [("class", "string"), ("ref", "string")], self.inject)
        registry.add("event.register", [("classes", "set")], self.legacy_register)
        registry.add("event.unregister", [("classes", "set")], self.legacy_unregister)
        registry.add("event.next", [], self.legacy_next)
        registry.add("event.get_current_id", [], self.get_current_id)

    # ---------------------------------------------------------------- shared

    def inject_events_lost(self) -> None:
        self._lost_sessions.update(self._sessions.table)
        for queue in self._legacy.values():
            queue.lost = True
            queue.events.clear()
        self._db.wake()

    def _session_removed(self, session: str) -> None:
        self._lost_sessions.discard(session)
        if self._legacy.pop(session, None) is not None and not self._legacy:
            self._db.listeners.remove(self._on_change)

    def _check_session(self, session: str) -> None:
        if not self._sessions.valid(session):
            raise XapiFailure("SESSION_INVALID", session)
        if session in self._lost_sessions:
            self._lost_sessions.discard(session)
            raise XapiFailure("EVENTS_LOST")

    def valid_ref_counts(self) -> dict[str, Int32]:
        return {_LOWER[cls]: Int32(count) for cls, count in self._db.counts().items()}

    # ---------------------------------------------------------------- event.from

    async def event_from(
        self,
        call: Call,
        classes: list[Any],
        token: str,
        timeout: float,
    ) -> dict[str, Any]:
        session = call.session
        assert session is not None
        subscription = _Subscription.parse(classes)
        position = parse_token(token)
        if not math.isfinite(timeout) or timeout < 0:
            timeout = _FOREVER
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        only_tasks = subscription.classes == {"task"} and not subscription.everything
        delay = 0.0 if only_tasks else self._config.event_batch_delay
        if delay:
            await asyncio.sleep(min(delay, timeout))
        db = self._db
        while True:
            self._check_session(session)
            if position is not None and position[0] < db.lost_before:
                raise XapiFailure("EVENTS_LOST")
            events = self._collect(subscription, position)
            remaining = deadline - loop.time()
            if events or remaining <= 0:
                return {
                    "events": events,
                    "valid_ref_counts": self.valid_ref_counts(),
                    "token": format_token(db.generation, db.message_generation),
                }
            try:
                await asyncio.wait_for(db.wakeup_event().wait(), remaining)
            except TimeoutError:
                pass
            # Let a burst of changes land so that one reply carries them together.
            if delay:
                await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))

    def _collect(
        self, subscription: _Subscription, position: tuple[int, int] | None
    ) -> list[dict[str, Any]]:
        db = self._db
        generation, message_generation = position or (0, 0)
        tables = db.tables
        messages: list[dict[str, Any]] = []
        if subscription.wants_messages:
            for operation, ref in db.message_changes_since(message_generation):
                event: dict[str, Any] = {
                    "id": "0",
                    "timestamp": "0.0",
                    "class": "message",
                    "operation": operation,
                    "ref": ref,
                }
                if operation == "add":
                    event["snapshot"] = dict(tables["message"][ref])
                messages.append(event)
        added: list[dict[str, Any]] = []
        modified: list[dict[str, Any]] = []
        for gen, cls, ref, created_after in db.changes_since(generation):
            lower = _LOWER[cls]
            if not subscription.wants(lower, ref):
                continue
            record = tables[cls].get(ref)
            if record is None:
                continue
            (added if created_after else modified).append(
                {
                    "id": str(gen),
                    "timestamp": "0.0",
                    "class": lower,
                    "operation": "add" if created_after else "mod",
                    "ref": ref,
                    "snapshot": dict(record),
                }
            )
        deleted = [
            {
                "id": str(gen),
                "timestamp": "0.0",
                "class": _LOWER[cls],
                "operation": "del",
                "ref": ref,
            }
            for gen, cls, ref in db.deletions_since(generation)
            if subscription.wants(_LOWER[cls], ref)
        ]
        added.reverse()
        modified.reverse()
        deleted.reverse()
        return messages + added + modified + deleted

    # ---------------------------------------------------------------- event.inject

    def inject(self, call: Call, klass: str, ref: str) -> str:
        cls = CLASS_BY_LOWER.get(klass.lower())
        if cls is None or cls in ("session", "message"):
            raise XapiFailure("HANDLE_INVALID", klass, ref)
        generation = self._db.touch(cls, ref)
        return format_token(generation - 1, 0)

    # ---------------------------------------------------------------- legacy events

    def legacy_register(self, call: Call, classes: list[Any]) -> str:
        assert call.session is not None
        if not self._legacy:
            self._db.listeners.append(self._on_change)
        queue = self._legacy.setdefault(call.session, _LegacyQueue())
        queue.classes.update(str(name).lower() for name in classes)
        return ""

    def legacy_unregister(self, call: Call, classes: list[Any]) -> str:
        queue = self._legacy.get(call.session or "")
        if queue is not None:
            queue.classes.difference_update(str(name).lower() for name in classes)
        return ""

    def get_current_id(self, call: Call) -> str:
        return str(self._db.generation)

    async def legacy_next(self, call: Call) -> list[dict[str, Any]]:
        session = call.session
        assert session is not None
        if session not in self._legacy:
            raise XapiFailure("SESSION_NOT_REGISTERED", session)
        delay = self._config.event_batch_delay
        while True:
            self._check_session(session)
            queue = self._legacy.get(session)
            if queue is None:
                raise XapiFailure("SESSION_NOT_REGISTERED", session)
            if queue.lost:
                queue.lost = False
                raise XapiFailure("EVENTS_LOST")
            if queue.events:
                if delay:
                    await asyncio.sleep(delay)
                    self._check_session(session)
                    if queue.lost:
                        continue
                events = list(queue.events)
                queue.events.clear()
                return events
            await self._db.wakeup_event().wait()

    def _on_change(
        self, generation: int, cls: str, ref: str, operation: str, snapshot: dict[str, Any]
    ) -> None:
        lower = _LOWER[cls]
        limit = self._config.legacy_event_queue_limit
        event: dict[str, Any] | None = None
        for queue in self._legacy.values():
            if queue.lost or not ("*" in queue.classes or lower in queue.classes):
                continue
            if len(queue.events) >= limit:
                queue.lost = True
                queue.events.clear()
                continue
            if event is None:
                event = {
                    "id": str(generation),
                    "timestamp": f"{time.time():.6f}",
                    "class": lower,
                    "operation": operation,
                    "ref": ref,
                    "snapshot": snapshot,
                }
            queue.events.append(event)
