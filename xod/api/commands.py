"""Actions forwarded to a pool's master: the failover policy, tasks followed through the cache,
read-your-writes, XAPI errors turned into XO errors, and `_async` jobs.

An action handler receives a `Command`: it resolves the XO objects it acts on (which binds the
command to their pool), then runs XAPI calls through it:

- `await command.run("VM.start", ref, False, False)` — an `Async.` call; returns once the task
  has finished *and the cache shows it* (the task's completion travels on the same event stream
  as the effect, after it), with its decoded result;
- `await command.call("VM.set_name_label", ref, name)` — a plain call (setters have no Async
  form): the command answers as soon as XAPI has, and leaves a *write barrier* on the client's
  connection (event.inject + the cache's token passing it, run in the background).

Read-your-writes is kept per connection: the dispatcher makes every non-action call on a
connection wait for that connection's pending barriers (`caught_up`), so a read right after a
write shows it, while other connections, `all` and subscription deltas never wait. The reserved
param `_waitForCache: true` (popped by the dispatcher into `WAIT_FOR_CACHE`) restores the
blocking form: the answer itself waits until the cache shows the plain calls' effects.

Failover policy ("never run twice"): a call that fails before its request could be written
(connection refused, or no session because no master answers) waits for a master, bounded by
`failover_timeout`, then runs once. A call whose request may have reached the old master fails
with `outcome_unknown` (code 21) instead of being sent again.

`_async: true` (reserved param, popped by the dispatcher into `ASYNC_REQUESTED`): the action
runs in the background; the caller gets the id of its task (the first XAPI task it starts, or a
client-owned task created for actions made of plain calls). `task.wait` returns the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from xod.api import errors
from xod.api.context import ApiConnection, CallContext
from xod.api.registry import Registry
from xod.api.services import Services
from xod.backoff import Backoff
from xod.cache.store import ChangeBatch, ObjectStore
from xod.cache.sync import PoolSync
from xod.xapi.codec import decode_xmlrpc_fragment
from xod.xapi.connection import PoolConnection
from xod.xapi.errors import TransportError, XapiError
from xod.xapi.tasks import FINISHED_STATUSES, task_outcome

log = logging.getLogger("xod.api.commands")

# Set by the dispatcher for the duration of one call carrying `_async: true`.
ASYNC_REQUESTED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "xod_async_requested", default=False
)
# Set by the dispatcher for one call carrying `_waitForCache: true`.
WAIT_FOR_CACHE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "xod_wait_for_cache", default=False
)
# Names of the methods that are actions (the only ones accepting `_async`).
ACTIONS: set[str] = set()

DEFAULT_TASK_RECHECK = 10.0
# Finished `_async` outcomes kept for task.wait (oldest dropped first), and for how long.
FINISHED_JOBS_LIMIT = 1000
FINISHED_JOBS_TTL = 3600.0

Handler = Callable[["Command", dict[str, Any]], Awaitable[Any]]


# -- errors specific to forwarding ---------------------------------------------------------------


def outcome_unknown(method: str, object_id: Any, cause: BaseException) -> errors.ApiError:
    return errors.ApiError(
        21,
        f"outcome unknown: the pool master stopped answering after {method} was sent; "
        "it may or may not have run, and xod did not send it again",
        {"objectId": object_id, "code": "OUTCOME_UNKNOWN", "method": method, "reason": str(cause)},
    )


def master_unreachable(object_id: Any, waited: float, cause: BaseException) -> errors.ApiError:
    return errors.ApiError(
        9,
        f"server unreachable: no pool master answered within {waited:g} s",
        {"objectId": object_id, "reason": str(cause)},
    )


# -- tasks followed through the cache ------------------------------------------------------------


@dataclass(eq=False)
class _TaskWaiter:
    seen: asyncio.Future[dict[str, Any]]
    finished: asyncio.Future[dict[str, Any] | None]  # None: the task left the cache unfinished
    object_id: str | None = None


class TaskFollower:
    """Waits for XAPI tasks by ref as the cache sees them. One store listener; per batch it only
    looks at anything while someone waits."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._by_ref: dict[str, list[_TaskWaiter]] = {}
        self._by_id: dict[str, list[_TaskWaiter]] = {}
        store.subscribe(self._on_batch)

    def follow(self, ref: str, object_id: str | None) -> _TaskWaiter:
        """Start following `ref` (`object_id`: its id if the cache already has it)."""
        loop = asyncio.get_running_loop()
        waiter = _TaskWaiter(loop.create_future(), loop.create_future())
        self._by_ref.setdefault(ref, []).append(waiter)
        obj = self._store.get(object_id) if object_id is not None else None
        if obj is not None:
            self._feed(waiter, obj)
        return waiter

    def forget(self, ref: str, waiter: _TaskWaiter) -> None:
        for index, key in ((self._by_ref, ref), (self._by_id, waiter.object_id)):
            waiters = index.get(key) if key is not None else None
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del index[key]  # type: ignore[arg-type]  # not None: its waiters were found

    def _feed(self, waiter: _TaskWaiter, obj: dict[str, Any]) -> None:
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


# -- the per-daemon command service --------------------------------------------------------------


@dataclass(eq=False)
class _Job:
    task: asyncio.Task[Any]
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

    def add_job(self, task_id: str, task: asyncio.Task[Any]) -> None:
        job = _Job(task)
        self._jobs[task_id] = job

        def finished(_: asyncio.Task[Any]) -> None:
            job.finished_at = time.monotonic()
            self._trim_jobs()

        task.add_done_callback(finished)

    def job(self, task_id: str) -> asyncio.Task[Any] | None:
        job = self._jobs.get(task_id)
        return None if job is None else job.task

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

    # -- running an action ---------------------------------------------------------------------

    async def execute(
        self, ctx: CallContext, name: str, handler: Handler, params: dict[str, Any]
    ) -> Any:
        command = Command(
            self,
            name,
            asynchronous=ASYNC_REQUESTED.get(),
            wait_for_cache=WAIT_FOR_CACHE.get(),
            client=ctx.connection,
        )
        # The action runs on its own, as xo-server's do: a caller that goes away (socket
        # closed, call cancelled) only stops waiting. Stopping halfway could leave a host
        # disabled, a VM's disks behind, or an XAPI task never destroyed.
        job = self.spawn(command.complete(handler, params))
        # The job must be read even if the caller goes away before it ends.
        job.add_done_callback(lambda t: t.cancelled() or t.exception())
        if not command.asynchronous:
            return await asyncio.shield(job)
        published = command.published
        await asyncio.wait({job, published}, return_when=asyncio.FIRST_COMPLETED)
        if published.done():
            task_id = published.result()
            self.add_job(task_id, job)
            return task_id
        # The action failed (or ended) before any task existed: answer as a plain call.
        return job.result()


async def catch_up(sync: PoolSync, timeout: float, method: str) -> None:
    """Wait until the cache has every change made on `sync`'s pool before this call (at most
    `timeout` seconds: the action did happen, only the cache could not confirm it)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await sync.barrier()
                    return
                except TransportError:
                    await asyncio.sleep(0.2)  # the master is moving: inject again
    except TimeoutError:
        log.warning("%s: the cache did not catch up within %g s", method, timeout)


async def caught_up(connection: ApiConnection) -> None:
    """Wait (only if needed) until the cache shows the connection's own writes. Each barrier
    is bounded by `failover_timeout` and never fails, so neither does this."""
    pending = connection.own_writes
    if pending:
        await asyncio.wait(tuple(pending))


def commands_of(services: Services) -> Commands:
    """The Commands of a daemon (created on first use, kept on its Services)."""
    return services.state(Commands, lambda: Commands(services, services.failover_timeout))


@dataclass(eq=False)
class Command:
    """One action being run: its pool, its XAPI calls, its task (for `_async`)."""

    commands: Commands
    method: str
    asynchronous: bool = False
    # Answer only once the cache shows the plain calls' effects (`_waitForCache`).
    wait_for_cache: bool = False
    # The client connection that asked (None: internal); it gets the write barrier.
    client: ApiConnection | None = None
    sync: PoolSync | None = None
    object_id: Any = None  # the main object, for error data
    published: asyncio.Future[str] = field(init=False)
    _client_task: str | None = field(default=None, init=False)
    _dirty: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.published = asyncio.get_running_loop().create_future()

    @property
    def store(self) -> ObjectStore:
        return self.commands.services.objects

    @property
    def connection(self) -> PoolConnection:
        assert self.sync is not None, "resolve an object first"
        return self.sync.connection

    # -- objects -------------------------------------------------------------------------------

    def resolve(self, object_id: str, types: tuple[str, ...] | str) -> dict[str, Any]:
        """The XO object `object_id` of one of `types`; binds this command to its pool."""
        types = (types,) if isinstance(types, str) else types
        obj = self.store.get(object_id)
        if obj is None or obj.get("type") not in types:
            raise errors.no_such_object(object_id, types[0] if len(types) == 1 else list(types))
        server_id = self.commands.server_of_pool(obj.get("$pool"))
        if server_id is None:
            raise errors.server_unreachable(object_id)
        sync = self.commands.services.pools.sync_of(server_id)
        if self.sync is None:
            record = self.commands.services.store.servers.get(server_id)
            if record is not None and record.read_only:
                raise errors.forbidden_operation(self.method, "the server is read-only")
            self.sync = sync
            self.object_id = object_id
        elif sync is not self.sync:
            raise errors.not_implemented()  # cross-pool actions are not supported
        return obj

    def id_of(self, ref: str) -> str | None:
        """The XO id of an OpaqueRef of this command's pool (None if the cache has no such)."""
        if self.sync is None:
            return None
        return self.sync.id_of(ref)

    def ref_of(self, object_id: str, types: tuple[str, ...] | str) -> str:
        ref: str = self.resolve(object_id, types)["_xapiRef"]
        return ref

    # -- calls ---------------------------------------------------------------------------------

    async def send(self, method: str, *args: Any) -> Any:
        """One call to the master, under the failover policy (never sent twice)."""
        connection = self.connection
        deadline = time.monotonic() + self.commands.failover_timeout
        backoff = Backoff(0.05, 1.0)
        while True:
            try:
                return await connection.call(method, *args)
            except TransportError as error:
                if error.sent:  # it may have reached the host: never send it again
                    raise outcome_unknown(method, self.object_id, error) from None
                delay = backoff.next()
                if time.monotonic() + delay > deadline:
                    raise master_unreachable(
                        self.object_id, self.commands.failover_timeout, error
                    ) from None
                log.info("%s: no master answers (%s); waiting for one", method, error)
                await asyncio.sleep(delay)

    async def call(self, method: str, *args: Any) -> Any:
        """A plain (synchronous) XAPI call; its effect is awaited in the cache at the end."""
        if self.asynchronous and not self.published.done():
            await self._publish_client_task()
        result = await self.send(method, *args)
        self._dirty = True
        return result

    async def run(
        self, method: str, *args: Any, on_task: Callable[[str], Any] | None = None
    ) -> Any:
        """`Async.<method>`: returns the task's decoded result once the cache shows it ended.
        `on_task(task_ref)` is called as soon as the task exists (to cancel it, say)."""
        task_ref = await self.send(f"Async.{method}", *args)
        if on_task is not None:
            on_task(task_ref)
        return await self.wait_task(task_ref, method, publish=self.asynchronous)

    async def wait_task(
        self, task_ref: str, method: str, *, publish: bool = False, destroy: bool = True
    ) -> Any:
        """Wait until the cache shows the task ended; its decoded result, or its XapiError /
        TaskCancelled. Our own tasks are destroyed afterwards, as xapi asks of its clients;
        someone else's (`destroy=False`) are left for their owner to read."""
        follower = self.commands.follower
        waiter = follower.follow(task_ref, self.id_of(task_ref))
        try:
            if publish and not self.published.done():
                await self._publish_task(task_ref, waiter.seen)
            obj = await self._finished(task_ref, method, waiter)
        finally:
            follower.forget(task_ref, waiter)
        if obj is not None and obj.get("status") == "success":
            if destroy:
                self._destroy_later(task_ref)
            return decode_xmlrpc_fragment(obj.get("result") or "")
        # Failure details (error_info) are not part of the cached object: read them once.
        try:
            record = await self.send("task.get_record", task_ref)
        except XapiError as error:
            if error.code == "HANDLE_INVALID":
                raise outcome_unknown(method, self.object_id, error) from None
            raise
        if destroy:
            self._destroy_later(task_ref)
        return task_outcome(task_ref, record)

    async def _finished(
        self, task_ref: str, method: str, waiter: _TaskWaiter
    ) -> dict[str, Any] | None:
        """The task's cached object once it ended — or None when the cache cannot tell (the
        task left it unfinished, or the pool says it ended while the cache lags or stopped).
        Raises outcome_unknown when the pool cannot be asked for `failover_timeout` (removed
        server, master gone for good): the task may still be running there."""
        unreachable_since: float | None = None
        while True:
            try:
                async with asyncio.timeout(self.commands.task_recheck):
                    return await asyncio.shield(waiter.finished)
            except TimeoutError:
                pass
            # A safety net, not the way results come: the cache may be stopped or behind.
            try:
                record = await self.connection.call("task.get_record", task_ref)
            except XapiError as error:
                if error.code == "HANDLE_INVALID":
                    return None
                continue
            except TransportError as error:
                now = time.monotonic()
                if unreachable_since is None:
                    unreachable_since = now
                if (
                    self.connection.closed
                    or now - unreachable_since >= self.commands.failover_timeout
                ):
                    raise outcome_unknown(method, self.object_id, error) from None
                continue
            unreachable_since = None
            if record.get("status") in FINISHED_STATUSES:
                self._dirty = True  # the cache has to catch up before the caller is answered
                return None

    def _destroy_later(self, task_ref: str) -> None:
        async def destroy() -> None:
            with contextlib.suppress(TransportError, XapiError):
                await self.connection.call("task.destroy", task_ref)

        self.commands.spawn(destroy())

    async def settle(self) -> None:
        """Read-your-writes for plain calls: wait until the cache has caught up with the pool
        (`_waitForCache`, or no client connection to hold a barrier), or leave the barrier on
        the client's connection and answer at once."""
        if not self._dirty or self.sync is None:
            return
        self._dirty = False
        if self.wait_for_cache or self.client is None:
            await catch_up(self.sync, self.commands.failover_timeout, self.method)
        else:
            self.commands.leave_barrier(self.client, self.sync, self.method)

    # -- _async --------------------------------------------------------------------------------

    async def _publish_task(self, task_ref: str, seen: asyncio.Future[dict[str, Any]]) -> None:
        try:
            async with asyncio.timeout(self.commands.failover_timeout):
                obj = await asyncio.shield(seen)
            task_id = obj["id"]
        except TimeoutError:
            task_id = await self.send("task.get_uuid", task_ref)
        if not self.published.done():
            self.published.set_result(task_id)

    async def _publish_client_task(self) -> None:
        """Actions made of plain calls get a client-owned task, so `_async` has one to show."""
        ref = await self.send("task.create", f"xod: {self.method}", "")
        self._client_task = ref
        waiter = self.commands.follower.follow(ref, self.id_of(ref))
        try:
            await self._publish_task(ref, waiter.seen)
        finally:
            self.commands.follower.forget(ref, waiter)

    async def _finish_client_task(self, error: BaseException | None) -> None:
        ref = self._client_task
        if ref is None:
            return
        with contextlib.suppress(TransportError, XapiError, errors.ApiError):
            if error is None:
                await self.send("task.set_progress", ref, 1.0)
                await self.send("task.set_status", ref, "success")
            else:
                code = error.code if isinstance(error, XapiError) else "INTERNAL_ERROR"
                await self.send("task.set_error_info", ref, [str(code), str(error)])
                await self.send("task.set_status", ref, "failure")
        self._destroy_later(ref)

    # -- the whole action ----------------------------------------------------------------------

    async def complete(self, handler: Handler, params: dict[str, Any]) -> Any:
        """Run the handler, wait for the cache, map errors; finish the client task if any."""
        error: BaseException | None = None
        try:
            result = await handler(self, params)
            await self.settle()
            return result
        except XapiError as failure:
            error = failure
            raise self.translate(failure) from None
        except BaseException as failure:
            error = failure
            raise
        finally:
            if self._client_task is not None:
                await asyncio.shield(self.commands.spawn(self._finish_client_task(error)))

    def translate(self, error: XapiError) -> errors.ApiError:
        """An XAPI failure as the client sees it: an XO error (the table in xod/api/errors.py),
        its OpaqueRefs turned into ids."""
        return errors.xapi_to_xo(error, self.id_of, object_id=self.object_id, method=self.method)


# -- declaring actions ---------------------------------------------------------------------------


def action(
    registry: Registry, name: str, *, permission: str = "write"
) -> Callable[[Handler], Handler]:
    """Decorator: `@action(registry, "vm.start")` on `async def start(command, params)`."""

    def register(handler: Handler) -> Handler:
        async def run(ctx: CallContext, params: dict[str, Any]) -> Any:
            return await commands_of(ctx.services).execute(ctx, name, handler, params)

        run.__name__ = handler.__name__
        registry.add(name, run, permission)
        ACTIONS.add(name)
        return handler

    return register
