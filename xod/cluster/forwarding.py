"""Actions on any instance: forwarded to the pool's owner by NATS request/reply, run there once.

The forwarding instance sends the action as it was asked (method, params, `_async`, the
caller's user id) to `xod.actions.<server id>`, which only the pool's owner listens to. The
owner runs it under its failover rules (xod/api/commands.py `run_action`) and answers with the
result and the revision at which its effect is in the change log; the forwarding instance
answers its client once its own replica has reached that revision (read-your-writes on every
instance).

Never run twice, as with a master change: a request nobody listens to (no owner yet: NATS says
"no responders") was not run, and is sent again until an owner answers, within the failover
timeout. Once sent, it is never sent again: if the pool's owner changes or vanishes before
answering, the caller gets `outcome_unknown`, as when a master stops answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from xod.api import errors
from xod.api.commands import ACTION_HANDLERS, run_action
from xod.api.jobs import Commands
from xod.api.owners import ForwardToOwner
from xod.backoff import Backoff
from xod.cluster.nats import ClusterLink
from xod.cluster.pools import ClusteredPoolManager
from xod.store import User

log = logging.getLogger("xod.cluster")

SUBJECT_PREFIX = "xod.actions"
# The owner answers "not mine" (it lost the pool before running the action): send it again.
NOT_OWNER = "not_owner"


def subject_of(server_id: str) -> str:
    return f"{SUBJECT_PREFIX}.{server_id}"


class Forwarding:
    """Both ends: `forward` (any instance) and the owner's listeners (`listen` per pool)."""

    def __init__(self, link: ClusterLink, pools: ClusteredPoolManager, commands: Commands) -> None:
        self.link = link
        self.pools = pools
        self.commands = commands
        self._listeners: dict[str, Subscription] = {}
        self.forwarded = 0
        self.served = 0
        pools.on_ownership.append(self._ownership_changed)

    # -- the forwarding instance ---------------------------------------------------------------

    async def forward(
        self,
        server_id: str,
        method: str,
        params: dict[str, Any],
        asynchronous: bool,
        user_id: str | None,
    ) -> Any:
        payload = orjson.dumps(
            {"method": method, "params": params, "async": asynchronous, "user": user_id}
        )
        timeout = self.commands.failover_timeout
        deadline = asyncio.get_running_loop().time() + timeout
        backoff = Backoff(0.05, 1.0)
        self.forwarded += 1
        while True:
            owner = await self.pools.leases.owner_of(server_id)
            try:
                if owner is None:
                    raise NoRespondersError
                reply = await self._request(server_id, owner, payload, method)
            except NoRespondersError:
                reply = None
            if reply is not None and reply.get("error") != NOT_OWNER:
                break
            # Not run: wait for an owner, within the failover timeout.
            delay = backoff.next()
            if asyncio.get_running_loop().time() + delay > deadline:
                raise errors.master_unreachable(
                    None, timeout, RuntimeError(f"no instance owns pool connection {server_id}")
                )
            await asyncio.sleep(delay)
        error = reply.get("error")
        if error is not None:
            raise errors.ApiError(error["code"], error["message"], *_data(error))
        try:
            await self.pools.replica.wait_for(int(reply["revision"]), timeout)
        except TimeoutError:
            log.warning("%s: the replica did not reach revision %s", method, reply["revision"])
        return reply.get("result")

    async def _request(
        self, server_id: str, owner: str, payload: bytes, method: str
    ) -> dict[str, Any]:
        """One request to the owner; outcome_unknown if the owner changes before answering."""
        request = asyncio.ensure_future(
            # Bounded by the owner's lease below, not by the action's duration.
            self.link.nc.request(subject_of(server_id), payload, timeout=24 * 3600)
        )
        try:
            while True:
                done, _ = await asyncio.wait({request}, timeout=self.pools.leases.lease_seconds / 3)
                if done:
                    break
                if await self._owner_or_none(server_id) != owner:
                    raise errors.outcome_unknown(
                        method, None, RuntimeError(f"instance {owner} gave up the pool")
                    )
            try:
                message: Msg = request.result()
            except NatsTimeoutError as error:
                raise errors.outcome_unknown(method, None, error) from None
            reply: dict[str, Any] = orjson.loads(message.data)
            return reply
        finally:
            if not request.done():
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await request

    async def _owner_or_none(self, server_id: str) -> str | None:
        try:
            return await self.pools.leases.owner_of(server_id)
        except Exception:  # NATS unreachable: the owner cannot be known, nor renew
            return None

    # -- the owner -----------------------------------------------------------------------------

    def _ownership_changed(self, server_id: str, owned: bool) -> None:
        asyncio.get_running_loop().create_task(self._listen(server_id, owned))

    async def _listen(self, server_id: str, owned: bool) -> None:
        subscription = self._listeners.pop(server_id, None)
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        if owned and self.pools.runs_here(server_id):
            self._listeners[server_id] = await self.link.nc.subscribe(
                subject_of(server_id), cb=self._serve
            )

    async def _serve(self, message: Msg) -> None:
        # Each action on its own: a long one must not hold the next.
        task = self.commands.spawn(self._run(message))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _run(self, message: Msg) -> None:
        request = orjson.loads(message.data)
        method = request["method"]
        handler = ACTION_HANDLERS.get(method)
        reply: dict[str, Any]
        try:
            if handler is None:
                raise errors.method_not_found(method)
            self.served += 1
            # Answered once this replica shows the effect (`wait_for_cache`): its revision
            # then is one at which the effect is in the change log.
            result = await run_action(
                self.commands,
                method,
                handler,
                request["params"],
                client=None,
                user=self._user(request.get("user")),
                asynchronous=bool(request.get("async")),
                wait_for_cache=True,
            )
            reply = {"result": result, "revision": self.pools.store.revision}
        except ForwardToOwner:
            reply = {"error": NOT_OWNER}
        except errors.ApiError as error:
            reply = {"error": error.to_json(), "revision": self.pools.store.revision}
        except Exception as error:
            log.exception("forwarded %s failed", method)
            reply = {"error": {"code": -32000, "message": f"{type(error).__name__}: {error}"}}
        await message.respond(orjson.dumps(reply))

    def _user(self, user_id: str | None) -> User | None:
        """The caller, for the checks that depend on the params' values (its objects were
        checked on the instance it called: the shared state makes both see the same grants)."""
        return None if user_id is None else self.commands.services.store.users.get(user_id)

    async def close(self) -> None:
        for server_id in list(self._listeners):
            await self._listen(server_id, False)


def _data(error: dict[str, Any]) -> tuple[Any, ...]:
    return (error["data"],) if "data" in error else ()
