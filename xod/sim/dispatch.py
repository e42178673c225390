"""Routing a wire call to its message: names, Async, parameter checks, session checks, tasks.

Check order (xapi `gen_server.ml`, `server_helpers.ml`): unknown method (its first param is
session-checked first) -> Async without async mode -> parameter count -> parameter types ->
session validity and pool-member check -> the operation (inside a task when Async).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from xod.sim.errors import XapiFailure
from xod.sim.registry import Message

if TYPE_CHECKING:
    from xod.sim.pool import SimPool

_log = logging.getLogger(__name__)

_PROGRESS_STEPS = 5


class Call:
    """One running call: who made it, where, and (for Async) its task."""

    __slots__ = ("host", "local", "name", "op_key", "pool", "session", "task")

    def __init__(
        self,
        pool: SimPool,
        name: str,
        session: str | None,
        host: str,
        local: bool,
        task: str | None,
    ) -> None:
        self.pool = pool
        self.name = name
        self.session = session
        self.host = host
        self.local = local
        self.task = task
        # The key of this call in objects' current_operations (xapi: the call's task).
        self.op_key = task

    def check_cancelled(self) -> None:
        self.pool.tasks.check_cancelled(self.task)

    async def work(self) -> None:
        """Spend the operation's simulated time, moving the task's progress in steps and
        aborting at each step if the task was cancelled."""
        self.check_cancelled()
        duration = self.pool.duration_of(self.name)
        if duration <= 0:
            return
        step = duration / _PROGRESS_STEPS
        for index in range(1, _PROGRESS_STEPS + 1):
            await asyncio.sleep(step)
            self.check_cancelled()
            if self.task is not None and index < _PROGRESS_STEPS:
                self.pool.tasks.set_progress(self.task, round(index / _PROGRESS_STEPS, 4))


async def dispatch(pool: SimPool, method: str, params: list[Any], host: str, local: bool) -> Any:
    is_async = method.startswith("Async.")
    name = method[6:] if is_async else method
    message = pool.registry.lookup(name, alias=not is_async)
    if message is None:
        if params:
            pool.sessions.check(params[0], host=host, local=True)
        raise XapiFailure("MESSAGE_METHOD_UNKNOWN", method)
    if is_async and not message.async_capable:
        raise XapiFailure("Fault", f"No async mode for this operation (rpc: {message.name})")
    session: str | None = None
    if message.session:
        if not params:
            raise XapiFailure("MESSAGE_PARAMETER_COUNT_MISMATCH", method, message.required, 0)
        args = message.bind(method, params[1:])
        session = pool.sessions.check(params[0], host=host, local=local, slave_ok=message.slave_ok)
    else:
        args = message.bind(method, params)
    if is_async:
        task = pool.tasks.create(f"Async.{message.name}", host)
        call = Call(pool, message.name, session, host, local, task)
        running = asyncio.get_running_loop().create_task(_run_in_task(call, message, args))
        pool.tasks.running[task] = running
        running.add_done_callback(lambda _: pool.tasks.running.pop(task, None))
        return task
    call = Call(pool, message.name, session, host, local, None)
    try:
        if message.is_coroutine:
            return await message.handler(call, *args)
        return message.handler(call, *args)
    except XapiFailure:
        raise
    except Exception as error:  # any server bug surfaces as xapi does: INTERNAL_ERROR
        _log.exception("simulated %s failed", method)
        raise XapiFailure("INTERNAL_ERROR", f"{type(error).__name__}: {error}") from error


async def _run_in_task(call: Call, message: Message, args: list[Any]) -> None:
    tasks = call.pool.tasks
    task = call.task
    assert task is not None
    try:
        call.check_cancelled()
        if message.is_coroutine:
            result = await message.handler(call, *args)
        else:
            result = message.handler(call, *args)
    except XapiFailure as failure:
        tasks.fail(task, failure)
    except asyncio.CancelledError:
        tasks.fail(task, XapiFailure("TASK_CANCELLED", task))
        raise
    except Exception as error:
        _log.exception("simulated Async.%s failed", message.name)
        tasks.fail(task, XapiFailure("INTERNAL_ERROR", f"{type(error).__name__}: {error}"))
    else:
        tasks.succeed(task, result)
