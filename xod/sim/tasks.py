"""Tasks: the records behind Async calls, their progress, outcome, cancellation and GC."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from xod.sim.db import Database
from xod.sim.errors import XapiFailure
from xod.sim.schema import new_record
from xod.sim.values import NULL_REF, new_uuid, now
from xod.sim.wire import xmlrpc_value

_BACKTRACE = "()"


class Tasks:
    def __init__(self, db: Database, finished_limit: int) -> None:
        self._db = db
        self._finished_limit = finished_limit
        self._finished: OrderedDict[str, None] = OrderedDict()  # oldest first
        self._cancel_requested: set[str] = set()
        self._destroy_requested: set[str] = set()
        self.running: dict[str, asyncio.Task[Any]] = {}

    @property
    def table(self) -> dict[str, dict[str, Any]]:
        return self._db.tables["task"]

    def create(
        self,
        name_label: str,
        host: str,
        *,
        description: str = "",
        subtask_of: str = NULL_REF,
    ) -> str:
        record = new_record(
            "task",
            uuid=new_uuid(),
            name_label=name_label,
            name_description=description,
            created=now(),
            status="pending",
            progress=0.0,
            resident_on=host,
            type="<none/>",
            subtask_of=subtask_of,
            backtrace=_BACKTRACE,
        )
        return self._db.insert("task", record)

    def is_pending(self, ref: str) -> bool:
        record = self._db.find("task", ref)
        return record is not None and record["status"] == "pending"

    def set_progress(self, ref: str, progress: float) -> None:
        if self.is_pending(ref):
            self._db.update("task", ref, {"progress": progress})

    def succeed(self, ref: str, value: Any) -> None:
        self._finish(ref, "success", xmlrpc_value(value), [])

    def fail(self, ref: str, failure: XapiFailure) -> None:
        status = "cancelled" if failure.code == "TASK_CANCELLED" else "failure"
        self._finish(ref, status, "", failure.description)

    def _finish(self, ref: str, status: str, result: str, error_info: list[str]) -> None:
        if not self.is_pending(ref):
            return
        self._cancel_requested.discard(ref)
        self._db.update(
            "task",
            ref,
            {
                "status": status,
                "progress": 1.0,
                "finished": now(),
                "result": result,
                "error_info": error_info,
                "allowed_operations": [],
                "current_operations": {},
            },
        )
        if ref in self._destroy_requested:
            self.destroy(ref)
            return
        self._finished[ref] = None
        while len(self._finished) > self._finished_limit:
            oldest = next(iter(self._finished))
            self.destroy(oldest)

    def cancel(self, ref: str, by: str) -> None:
        """Advisory: the operation aborts at its next check. No-op on finished tasks."""
        if not self.is_pending(ref):
            return
        self._cancel_requested.add(ref)
        record = self._db.get("task", ref)
        self._db.update(
            "task", ref, {"current_operations": {**record["current_operations"], by: "cancel"}}
        )

    def check_cancelled(self, ref: str | None) -> None:
        if ref is not None and ref in self._cancel_requested:
            raise XapiFailure("TASK_CANCELLED", ref)

    def destroy(self, ref: str) -> None:
        record = self._db.get("task", ref)
        if record["status"] == "pending" and ref in self.running:
            # Deleted once its operation completes (xapi_task.ml destroy).
            self._destroy_requested.add(ref)
            self._db.update(
                "task",
                ref,
                {"current_operations": {**record["current_operations"], ref: "destroy"}},
            )
            return
        self._db.delete("task", ref)
        self._finished.pop(ref, None)
        self._destroy_requested.discard(ref)
        self._cancel_requested.discard(ref)

    async def close(self) -> None:
        running = list(self.running.values())
        for task in running:
            task.cancel()
        for task in running:
            try:
                await task
            except BaseException:
                pass
        self.running.clear()
