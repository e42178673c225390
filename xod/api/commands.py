"""One action forwarded to a pool's master (`Command`), and how actions are declared (`action`):
the failover policy, tasks waited for through the cache, read-your-writes, XAPI errors turned
into XO errors, and `_async`.

An action handler receives a `Command`: it resolves the XO objects it acts on (which binds the
command to their pool), then runs XAPI calls through it:

- `await command.run("VM.start", ref, False, False)` — an `Async.` call; returns once the task
  has finished *and the cache shows it* (the task's completion travels on the same event stream
  as the effect, after it), with its decoded result;
- `await command.call("VM.set_name_label", ref, name)` — a plain call (setters have no Async
  form): the command answers as soon as XAPI has, and leaves a *write barrier* on the client's
  connection (event.inject + the cache's token passing it, run in the background).

Read-your-writes is kept per connection (xod/api/barriers.py): the dispatcher makes every
non-action call on a connection wait for that connection's pending barriers, so a read right
after a write shows it, while other connections, `all` and subscription deltas never wait.
The reserved param `_waitForCache: true` (popped by the dispatcher into `WAIT_FOR_CACHE`)
restores the blocking form: the answer itself waits until the cache shows the plain calls'
effects.

Failover policy ("never run twice"): a call that fails before its request could be written
(connection refused, or no session because no master answers) waits for a master, bounded by
`failover_timeout`, then runs once. A call whose request may have reached the old master fails
with `outcome_unknown` (code 21) instead of being sent again.

`_async: true` (reserved param, popped by the dispatcher into `ASYNC_REQUESTED`): the action
runs in the background; the caller gets the id of its task (the first XAPI task it starts, or a
client-owned task created for actions made of plain calls). `task.wait` returns the outcome.

Permissions, as xo-server checks them: an action is callable by any signed-in user, and declares
the objects it acts on (`resolve`: xo-server's `[param, types, permission]` entries), checked
before it runs (xod/api/resolve.py). A handler checks what depends on the params' values with
`command.check`, through the same check (`services.access`).

In a cluster, an action on a pool another instance owns is sent to that owner
(xod/api/owners.py), which runs it with `run_action` for the same user.

Elsewhere: the daemon-wide state of the actions (`Commands`: jobs, background tasks, the task
follower) is xod/api/jobs.py; following a task on the event stream, xod/api/task_follower.py;
the errors of the failover policy (`outcome_unknown`, `master_unreachable`), xod/api/errors.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from xod.api import errors
from xod.api.barriers import catch_up
from xod.api.context import ApiConnection, CallContext
from xod.api.jobs import Commands, commands_of
from xod.api.owners import ForwardToOwner, forwarding_of
from xod.api.registry import SIGNED_IN, Registry
from xod.api.resolve import ResolveEntry, authorize, declare, find_object
from xod.api.task_follower import TaskWaiter
from xod.backoff import Backoff
from xod.cache.store import ObjectStore
from xod.cache.sync import PoolSync
from xod.store import User
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
Handler = Callable[["Command", dict[str, Any]], Awaitable[Any]]

# Names of the methods that are actions (the only ones accepting `_async`).
ACTIONS: set[str] = set()
# Their handlers, by method name (what a pool's owner runs for another instance).
ACTION_HANDLERS: dict[str, Handler] = {}


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
    # Who asked (None: the daemon itself): whose permissions `check` applies.
    user: User | None = None
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

    def resolve(self, object_id: str, types: tuple[str, ...] | str | None) -> dict[str, Any]:
        """The XO object `object_id` of one of `types` (None: any); binds this command to its
        pool. No permission check: the action's `resolve` declaration, or `check`, does it."""
        obj = find_object(self.store, object_id, (types,) if isinstance(types, str) else types)
        server_id = self.commands.server_of_pool(obj.get("$pool"))
        if server_id is None:
            raise errors.server_unreachable(object_id)
        pools = self.commands.services.pools
        forwarding = forwarding_of(self.commands.services)
        if self.sync is None and forwarding.forward is not None and not pools.runs_here(server_id):
            raise ForwardToOwner(server_id)
        sync = pools.sync_of(server_id)
        if self.sync is None:
            record = self.commands.services.store.servers.get(server_id)
            if record is not None and record.read_only:
                raise errors.forbidden_operation(self.method, "the server is read-only")
            self.sync = sync
            self.object_id = object_id
        elif sync is not self.sync:
            raise errors.not_implemented()  # cross-pool actions are not supported
        return obj

    @property
    def is_admin(self) -> bool:
        """The caller bypasses every object check (or the daemon itself runs the command)."""
        return self.user is None or self.user.permission == "admin"

    def check(self, object_id: str, permission: str) -> None:
        """The caller's `permission` on the object, through the daemon's one check (code 2)."""
        if self.user is not None:
            self.commands.services.access.check(self.user, object_id, permission)

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
                    raise errors.outcome_unknown(method, self.object_id, error) from None
                delay = backoff.next()
                if time.monotonic() + delay > deadline:
                    raise errors.master_unreachable(
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
                raise errors.outcome_unknown(method, self.object_id, error) from None
            raise
        if destroy:
            self._destroy_later(task_ref)
        return task_outcome(task_ref, record)

    async def _finished(
        self, task_ref: str, method: str, waiter: TaskWaiter
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
                    raise errors.outcome_unknown(method, self.object_id, error) from None
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


# -- running an action ---------------------------------------------------------------------------


async def execute(
    commands: Commands, ctx: CallContext, name: str, handler: Handler, params: dict[str, Any]
) -> Any:
    """Run one action for `ctx`'s caller: its answer, or with `_async` the id of its task."""
    forwarding = forwarding_of(commands.services)
    forward = forwarding.forward
    # The params as asked: the handler may consume them before the pool tells where it runs.
    asked = copy.deepcopy(params) if forward is not None else params
    asynchronous = ASYNC_REQUESTED.get()
    try:
        return await run_action(
            commands,
            name,
            handler,
            params,
            client=ctx.connection,
            user=ctx.user,
            asynchronous=asynchronous,
            wait_for_cache=WAIT_FOR_CACHE.get(),
        )
    except ForwardToOwner as moved:
        assert forward is not None
        user_id = ctx.user.id if ctx.user is not None else None
        result = await forward(moved.server_id, name, asked, asynchronous, user_id)
        if asynchronous and isinstance(result, str):
            forwarding.remember_task(result, moved.server_id)
        return result


async def run_action(
    commands: Commands,
    name: str,
    handler: Handler,
    params: dict[str, Any],
    *,
    client: ApiConnection | None,
    user: User | None,
    asynchronous: bool,
    wait_for_cache: bool,
) -> Any:
    """Run one action here (`client` None: for another instance, answered once the cache
    shows its effects)."""
    command = Command(
        commands,
        name,
        asynchronous=asynchronous,
        wait_for_cache=wait_for_cache,
        client=client,
        user=user,
    )
    # The action runs on its own, as xo-server's do: a caller that goes away (socket
    # closed, call cancelled) only stops waiting. Stopping halfway could leave a host
    # disabled, a VM's disks behind, or an XAPI task never destroyed.
    job = commands.spawn(command.complete(handler, params))
    # The job must be read even if the caller goes away before it ends.
    job.add_done_callback(lambda t: t.cancelled() or t.exception())
    if not command.asynchronous:
        return await asyncio.shield(job)
    published = command.published
    await asyncio.wait({job, published}, return_when=asyncio.FIRST_COMPLETED)
    if published.done():
        task_id = published.result()
        commands.add_job(task_id, job, owner=None if user is None else user.id)
        return task_id
    # The action failed (or ended) before any task existed: answer as a plain call.
    return job.result()


# -- declaring actions ---------------------------------------------------------------------------


def action(
    registry: Registry, name: str, *, resolve: Iterable[ResolveEntry]
) -> Callable[[Handler], Handler]:
    """Decorator: `@action(registry, "vm.start", resolve=[("id", "VM", "operate")])` on
    `async def start(command, params)`. Any signed-in user may call it (xo-server publishes no
    permission for its object actions); the declared objects are checked before it runs."""
    entries = declare(name, resolve)

    def register(handler: Handler) -> Handler:
        async def run(ctx: CallContext, params: dict[str, Any]) -> Any:
            authorize(ctx, params, entries)
            return await execute(commands_of(ctx.services), ctx, name, handler, params)

        run.__name__ = handler.__name__
        registry.add(name, run, SIGNED_IN, action=True)
        ACTIONS.add(name)
        ACTION_HANDLERS[name] = handler
        return handler

    return register
