"""The daemon-wide state of the actions (`Commands`, one per daemon, from `commands_of`):
which server syncs which pool, the background tasks actions leave (task clean-ups, write
barriers) and cancel at shutdown, the task follower, and the `_async` jobs `task.wait` reads
(finished ones kept for a while, oldest dropped first).

One action's run is a `Command` (xod/api/commands.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from xod.api.barriers import catch_up
from xod.api.context import ApiConnection
from xod.api.services import Services
from xod.api.task_follower import TaskFollower
from xod.cache.sync import PoolSync

DEFAULT_TASK_RECHECK = 10.0
# Finished `_async` outcomes kept for task.wait (oldest dropped first), and for how long.
FINISHED_JOBS_LIMIT = 1000
FINISHED_JOBS_TTL = 3600.0


@dataclass(eq=False)
class _Job:
    task: asyncio.Task[Any]
    owner: str | None = None  # the id of the user whose action it is
    finished_at: float | None = None


class Commands:
    """Daemon-wide state of the actions: the task follower and the `_async` jobs."""

    def __init__(self, services: Services, failover_timeout: float) -> None:
        self.services = services
        self.failover_timeout = failover_timeout
        # How long a task may look unfinished in the cache before the pool is asked directly.
        self.task_recheck = DEFAULT_TASK_RECHECK
        self.follower = TaskFollower(services.objects)
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._background: set[asyncio.Task[Any]] = set()

    # -- pools ---------------------------------------------------------------------------------

    def server_of_pool(self, pool_id: str | None) -> str | None:
        """The id of the registered server syncing pool `pool_id`."""
        pools = self.services.pools
        for server_id in pools.server_ids():
            if pools.sync_of(server_id).pool_id == pool_id:
                return server_id
        return None

    def spawn(self, coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def cancel_all(self, grace: float) -> int:
        """The daemon is stopping: cancel the actions still running (and their clean-ups,
        which would otherwise retry a closed pool for `failover_timeout`), waiting at most
        `grace` seconds for them to end. How many did not."""
        running = list(self._background)
        for task in running:
            task.cancel()
        if not running:
            return 0
        _done, pending = await asyncio.wait(running, timeout=grace)
        return len(pending)

    # -- jobs ----------------------------------------------------------------------------------

    def add_job(self, task_id: str, task: asyncio.Task[Any], owner: str | None = None) -> None:
        job = _Job(task, owner)
        self._jobs[task_id] = job

        def finished(_: asyncio.Task[Any]) -> None:
            job.finished_at = time.monotonic()
            self._trim_jobs()

        task.add_done_callback(finished)

    def job(self, task_id: str) -> asyncio.Task[Any] | None:
        job = self._jobs.get(task_id)
        return None if job is None else job.task

    def job_owner(self, task_id: str) -> str | None:
        """The id of the user who started the `_async` action `task_id` (None: unknown)."""
        job = self._jobs.get(task_id)
        return None if job is None else job.owner

    def _trim_jobs(self) -> None:
        now = time.monotonic()
        finished = [task_id for task_id, job in self._jobs.items() if job.finished_at is not None]
        excess = len(finished) - FINISHED_JOBS_LIMIT
        for task_id in finished:
            job = self._jobs[task_id]
            if excess > 0 or now - job.finished_at > FINISHED_JOBS_TTL:  # type: ignore[operator]  # set, as `finished` says
                del self._jobs[task_id]
                excess -= 1

    # -- read-your-writes ----------------------------------------------------------------------

    def leave_barrier(self, connection: ApiConnection, sync: PoolSync, method: str) -> None:
        """`connection` wrote to `sync`'s pool: its next reads wait until the cache shows it."""
        barrier = self.spawn(catch_up(sync, self.failover_timeout, method))
        pending = connection.own_writes
        if pending is None:
            pending = connection.own_writes = set()
        pending.add(barrier)
        barrier.add_done_callback(pending.discard)
        barrier.add_done_callback(lambda t: t.cancelled() or t.exception())


def commands_of(services: Services) -> Commands:
    """The Commands of a daemon (created on first use, kept on its Services)."""
    return services.state(Commands, lambda: Commands(services, services.failover_timeout))
