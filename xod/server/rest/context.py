"""What every REST handler works with: the daemon's services, the JSON-RPC methods (the REST
API runs them, so both APIs always agree), the REST tasks and the live-change bounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xod.api.commands import ACTIONS
from xod.api.context import ApiConnection
from xod.api.dispatch import Dispatcher
from xod.api.services import Services
from xod.server.fanout import FanoutConfig
from xod.server.rest.errors import RestError
from xod.server.rest.tasks import RestTasks
from xod.store import User

BASE = "/rest/v0"


@dataclass(eq=False)
class Caller:
    """The signed-in user of one request, on a connection that lives as long as the request."""

    connection: ApiConnection
    user: User


@dataclass(eq=False)
class RestContext:
    services: Services
    dispatcher: Dispatcher
    tasks: RestTasks
    # The bounds of WebSocket subscribers, shared by REST watches (xod/server/fanout.py).
    live: FanoutConfig
    # SO_SNDBUF of watch streams, as of WebSocket clients (None: the kernel's).
    send_buffer: int | None = None
    # The open watch streams (xod/server/rest/watch.py), ended at shutdown.
    watches: set[Any] = field(default_factory=set)

    async def call(self, caller: Caller, method_name: str, params: dict[str, Any]) -> Any:
        """Run a JSON-RPC method as `caller`: the same permission check, validation and
        command objects as a WebSocket call."""
        method = self.dispatcher.registry.get(method_name)
        if method is None:  # a declaration names a method that does not exist: a bug
            raise RestError(501, f"not implemented: {method_name}")
        if method_name in ACTIONS:
            # Each HTTP request is a connection of its own: no later request would wait for
            # this one's writes, so a change (or its task, with `_async`) ends only once the
            # cache shows it.
            params = {**params, "_waitForCache": True}
        return await self.dispatcher.call(caller.connection, method, params, caller.user)
