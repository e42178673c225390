"""The tasks of REST actions: what Xen Orchestra shows at `/rest/v0/tasks/{id}` (name, object,
user, status, result), around the `_async` job of the command that runs the action.

A task's id is the one JSON-RPC `_async` gives (xod/api/commands.py), so `task.wait` over the
WebSocket and `GET /rest/v0/tasks/{id}?wait=true` wait for the same thing. Finished records are
kept as the command jobs are: the newest `FINISHED_JOBS_LIMIT`, for `FINISHED_JOBS_TTL`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from xod.api.jobs import FINISHED_JOBS_LIMIT, FINISHED_JOBS_TTL
from xod.server.rest.errors import from_exception

REST_ACTION_TYPE = "xo:rest-api:action"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False)
class RestTask:
    id: str
    name: str
    object_id: str
    object_type: str
    user_id: str
    outcome: asyncio.Future[Any]
    start: int = field(default_factory=now_ms)
    end: int | None = None

    @property
    def status(self) -> str:
        if not self.outcome.done():
            return "pending"
        if self.outcome.cancelled() or self.outcome.exception() is not None:
            return "failure"
        return "success"

    def view(self) -> dict[str, Any]:
        """XO's REST task object."""
        task: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "start": self.start,
            "updatedAt": self.end or self.start,
            "properties": {
                "name": self.name,
                "type": REST_ACTION_TYPE,
                "objectId": self.object_id,
                "objectType": self.object_type,
                "userId": self.user_id,
            },
        }
        if self.end is not None:
            task["end"] = self.end
            task["result"] = self.result()
        return task

    def result(self) -> Any:
        outcome = self.outcome
        if outcome.cancelled():
            return {"message": "the action was cancelled", "name": "CancelledError"}
        error = outcome.exception()
        if error is not None:
            body = from_exception(error).body()
            return {"message": body["error"], "name": type(error).__name__, **body}
        value = outcome.result()
        return {"id": value} if isinstance(value, str) else value


class RestTasks:
    def __init__(self) -> None:
        self._tasks: OrderedDict[str, RestTask] = OrderedDict()

    def get(self, task_id: str) -> RestTask | None:
        return self._tasks.get(task_id)

    def values(self) -> list[RestTask]:
        return list(self._tasks.values())

    def add(self, task: RestTask) -> RestTask:
        self._trim()
        self._tasks[task.id] = task

        def finished(_: asyncio.Future[Any]) -> None:
            task.end = now_ms()

        if task.outcome.done():
            task.end = task.start
        else:
            task.outcome.add_done_callback(finished)
        return task

    def _trim(self) -> None:
        oldest_kept = now_ms() - FINISHED_JOBS_TTL * 1000
        finished = [t for t in self._tasks.values() if t.end is not None]
        excess = len(finished) - FINISHED_JOBS_LIMIT + 1
        for task in finished:
            if excess > 0 or task.end < oldest_kept:  # type: ignore[operator]
                del self._tasks[task.id]
                excess -= 1
