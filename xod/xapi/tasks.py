"""Waiting for Async tasks: one shared watcher per connection follows the `task` class through
`event.from` for every waiting call (started while someone waits), instead of one poll per call;
it falls back to polling `task.get_record` when the host has no `event.from`."""

# A `timeout` argument here is a per-request deadline handed down to the HTTP layer (the
# module contract), not a replacement for asyncio.timeout.

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from xod.xapi.codec import decode_xmlrpc_fragment
from xod.xapi.errors import TaskCancelled, TransportError, XapiError

log = logging.getLogger("xod.xapi.tasks")

FINISHED_STATUSES = frozenset({"success", "failure", "cancelled"})
# Errors meaning "this host has no event.from": poll instead.
_NO_EVENT_FROM = frozenset({"MESSAGE_METHOD_UNKNOWN", "MESSAGE_REMOVED"})
# Errors meaning "start over from a fresh token".
_RESTART_TOKEN = frozenset({"EVENTS_LOST", "EVENT_FROM_TOKEN_PARSE_FAILURE"})

ProgressCallback = Callable[[float], None]


class _Caller(Protocol):
    async def call(self, method: str, *args: Any, timeout: float | None = None) -> Any: ...

    async def event_from(
        self, classes: list[str], token: str, timeout: float
    ) -> dict[str, Any]: ...


def task_outcome(task_ref: str, record: dict[str, Any]) -> Any:
    """The decoded result of a finished task, or the XapiError / TaskCancelled it ended with."""
    status = record.get("status")
    if status == "success":
        return decode_xmlrpc_fragment(record.get("result") or "")
    error_info = record.get("error_info") or []
    if status == "cancelled":
        if error_info:
            error = XapiError.from_description(error_info)
            if isinstance(error, TaskCancelled):
                raise error
            raise TaskCancelled(error.code, error.params)
        raise TaskCancelled("TASK_CANCELLED", [task_ref])
    if error_info:
        raise XapiError.from_description(error_info)
    raise XapiError("INTERNAL_ERROR", [f"task ended with status {status!r} and no error_info"])


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future[dict[str, Any]]
    progress: ProgressCallback | None
    last_progress: float | None = field(default=None)


class TaskWatcher:
    def __init__(
        self, caller: _Caller, *, event_timeout: float = 30.0, poll_interval: float = 0.5
    ) -> None:
        self._caller = caller
        self._event_timeout = event_timeout
        self._poll_interval = poll_interval
        self._waiters: dict[str, list[_Waiter]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._polling = False  # set for good once the host shows it has no event.from

    @property
    def watching(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    async def wait(
        self, task_ref: str, progress: ProgressCallback | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """The task's record once its status is no longer `pending`."""
        waiter = _Waiter(asyncio.get_running_loop().create_future(), progress)
        self._waiters.setdefault(task_ref, []).append(waiter)
        self._ensure_loop()
        try:
            async with asyncio.timeout(timeout):
                # The task may have finished before we were listening: one read closes the gap
                # (everything that happens after registration reaches us through the watcher).
                if not waiter.future.done():
                    self._feed(task_ref, await self._caller.call("task.get_record", task_ref))
                return await waiter.future
        finally:
            waiters = self._waiters.get(task_ref)
            if waiters is not None:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[task_ref]
            if not self._waiters:
                self._stop_loop()

    def _ensure_loop(self) -> None:
        if not self.watching:
            self._loop_task = asyncio.create_task(self._watch(), name="xapi-task-watcher")

    def _stop_loop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            self._loop_task = None

    async def close(self) -> None:
        task = self._loop_task
        self._stop_loop()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(TransportError("connection closed"))

    def _feed(self, task_ref: str, record: dict[str, Any]) -> None:
        waiters = self._waiters.get(task_ref)
        if not waiters:
            return
        finished = record.get("status") in FINISHED_STATUSES
        try:
            progress = float(record.get("progress", 0.0))
        except (TypeError, ValueError):
            progress = None
        for waiter in waiters:
            if waiter.future.done():
                continue
            if (
                waiter.progress is not None
                and progress is not None
                and progress != waiter.last_progress
            ):
                waiter.last_progress = progress
                try:
                    waiter.progress(progress)
                except Exception:
                    log.exception("task progress callback failed")
            if finished:
                waiter.future.set_result(record)

    def _fail(self, task_ref: str | None, error: BaseException) -> None:
        refs = [task_ref] if task_ref is not None else list(self._waiters)
        for ref in refs:
            for waiter in self._waiters.get(ref, ()):
                if not waiter.future.done():
                    waiter.future.set_exception(error)

    async def _watch(self) -> None:
        token = ""  # "" = every task's current state first: a safe start for any waiter
        while self._waiters:
            try:
                if self._polling:
                    await self._poll_once()
                    await asyncio.sleep(self._poll_interval)
                    continue
                batch = await self._caller.event_from(["task"], token, self._event_timeout)
            except XapiError as error:
                if error.code in _NO_EVENT_FROM:
                    log.info("host has no event.from: polling tasks instead")
                    self._polling = True
                elif error.code in _RESTART_TOKEN:
                    token = ""
                else:
                    self._fail(None, error)
                    return
                continue
            except TransportError as error:
                # The connection already failed over if it could; nothing more to do here.
                self._fail(None, error)
                return
            token = batch.get("token", token)
            for event in batch.get("events", ()):
                task_ref = event.get("ref")
                if task_ref not in self._waiters:
                    continue
                if event.get("operation") == "del":
                    self._fail(task_ref, XapiError("HANDLE_INVALID", ["task", task_ref]))
                elif "snapshot" in event:
                    self._feed(task_ref, event["snapshot"])

    async def _poll_once(self) -> None:
        for task_ref in list(self._waiters):
            try:
                record = await self._caller.call("task.get_record", task_ref)
            except XapiError as error:
                self._fail(task_ref, error)
                continue
            self._feed(task_ref, record)
