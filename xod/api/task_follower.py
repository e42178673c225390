"""XAPI tasks followed through the cache: an action waits for its task to finish by watching
the cache's event stream, where the task's completion travels after the effects it reports.

One store listener serves every waiter (`TaskFollower`, owned daemon-wide by `Commands` in
xod/api/jobs.py); a `Command` (xod/api/commands.py) follows each task it starts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from xod.cache.store import ChangeBatch, ObjectStore
from xod.xapi.tasks import FINISHED_STATUSES


@dataclass(eq=False)
class TaskWaiter:
    seen: asyncio.Future[dict[str, Any]]
    finished: asyncio.Future[dict[str, Any] | None]  # None: the task left the cache unfinished
    object_id: str | None = None


class TaskFollower:
    """Waits for XAPI tasks by ref as the cache sees them. One store listener; per batch it only
    looks at anything while someone waits."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._by_ref: dict[str, list[TaskWaiter]] = {}
        self._by_id: dict[str, list[TaskWaiter]] = {}
        store.subscribe(self._on_batch)

    def follow(self, ref: str, object_id: str | None) -> TaskWaiter:
        """Start following `ref` (`object_id`: its id if the cache already has it)."""
        loop = asyncio.get_running_loop()
        waiter = TaskWaiter(loop.create_future(), loop.create_future())
        self._by_ref.setdefault(ref, []).append(waiter)
        obj = self._store.get(object_id) if object_id is not None else None
        if obj is not None:
            self._feed(waiter, obj)
        return waiter

    def forget(self, ref: str, waiter: TaskWaiter) -> None:
        for index, key in ((self._by_ref, ref), (self._by_id, waiter.object_id)):
            waiters = index.get(key) if key is not None else None
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del index[key]  # type: ignore[arg-type]  # not None: its waiters were found

    def _feed(self, waiter: TaskWaiter, obj: dict[str, Any]) -> None:
        if waiter.object_id is None:
            waiter.object_id = obj["id"]
            self._by_id.setdefault(obj["id"], []).append(waiter)
        if not waiter.seen.done():
            waiter.seen.set_result(obj)
        if obj.get("status") in FINISHED_STATUSES and not waiter.finished.done():
            waiter.finished.set_result(obj)

    def _on_batch(self, batch: ChangeBatch) -> None:
        if not self._by_ref:
            return
        by_ref = self._by_ref
        for obj in batch.enter.values():
            if obj.get("type") == "task":
                waiters = by_ref.get(obj.get("_xapiRef"))  # type: ignore[arg-type]  # None finds none
                if waiters:
                    for waiter in list(waiters):
                        self._feed(waiter, obj)
        for object_id in batch.exit:
            for waiter in self._by_id.get(object_id, ()):
                if not waiter.finished.done():
                    waiter.finished.set_result(None)
