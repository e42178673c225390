"""JSON-RPC 2.0 dispatch as xo-server does it (message shapes, call pipeline), done right where
xo-server is broken: malformed JSON gets a -32700 response, a batch gets a proper batch response.

Transport-free: the edge decodes a frame in its wire format with xod/api/requests.py (JSON or
msgpack, into JSON-shaped values nested at most `MAX_NESTING` deep, malformed requests already
turned into their error; `PARSE_ERROR` is the answer to a frame that does not decode), and
`handle_message(connection, message, encode)` returns the encoded reply, or None. Batching
and its limits are here, once, for every format: a batch holds at most `MAX_BATCH` calls (a
bigger one is rejected whole with -32600), so one small frame cannot buy thousands of password
checks or huge replies.
Every call passes through `Dispatcher.handle`, which logs it (`call`: method, user, duration,
outcome — never its params) and counts it for /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from xod import metrics
from xod.api import errors
from xod.api.barriers import caught_up
from xod.api.commands import ACTIONS, ASYNC_REQUESTED, WAIT_FOR_CACHE
from xod.api.context import ApiConnection, CallContext
from xod.api.registry import ANONYMOUS, SIGNED_IN, Method, Registry
from xod.api.requests import RejectedRequest, error_response, is_valid_id
from xod.api.services import Services
from xod.store import User, permission_allows

log = logging.getLogger("xod.api")
call_log = logging.getLogger("xod.api.calls")
# The metrics label of methods that do not exist: a client must not grow the label set.
UNKNOWN_METHOD = "(unknown)"

# Calls one batch frame may hold. XO clients send single calls; a batch is a convenience.
MAX_BATCH = 100

Encode = Callable[[Any], bytes]

_NO_ID = object()


# The reply to a frame that does not decode.
PARSE_ERROR = error_response(None, errors.parse_error().to_json())


def _response(request_id: Any, result: Any) -> dict[str, Any]:
    return {"id": request_id, "jsonrpc": "2.0", "result": result}


def normalize_params(method: Method, params: dict[str, Any]) -> dict[str, Any]:
    """Steps 6-7 of xo-server's pipeline: namespace→`id` aliasing and `?`-suffixed params."""
    validator = method.validator
    if validator is None:
        return params
    names = validator.property_names
    namespace = method.namespace
    if (
        "id" not in params
        and "id" in names
        and namespace not in names
        and isinstance(params.get(namespace), str)
    ):
        params = dict(params)
        params["id"] = params.pop(namespace)
    optional = [key for key in params if key.endswith("?")]
    if optional:
        params = dict(params)
        for key in optional:
            name = key[:-1]
            if name in params:
                raise errors.invalid_parameter(
                    "",
                    "ignorable",
                    f"must not have both {name} and {key}",
                    {"property": name},
                    "#/additionalProperties",
                )
            value = params.pop(key)
            if not validator.rejects_as_extra(name):
                params[name] = value
    return params


def check_permission(permission: str, user: User | None) -> None:
    """Raise `unauthorized` unless `user` may call a method that requires `permission`."""
    if permission != ANONYMOUS:
        if user is None:
            raise errors.unauthorized(None if permission == SIGNED_IN else permission)
        if permission != SIGNED_IN and not permission_allows(user.permission, permission):
            raise errors.unauthorized(permission)


class Dispatcher:
    def __init__(self, registry: Registry, services: Services) -> None:
        self.registry = registry
        self.services = services

    @staticmethod
    def call_count(message: Any) -> int:
        """How many calls a decoded frame asks for (what it counts against a connection's
        limit of calls at once)."""
        if isinstance(message, list) and 0 < len(message) <= MAX_BATCH:
            return len(message)
        return 1

    async def handle_message(
        self, connection: ApiConnection, message: Any, encode: Encode, concurrency: int = 1
    ) -> bytes | None:
        """One decoded frame → the encoded reply; a batch runs `concurrency` calls at once."""
        if not isinstance(message, list):
            reply = await self.handle(connection, message)
            return None if reply is None else encode(reply)
        if not message:
            return encode(error_response(None, errors.invalid_request().to_json()))
        if len(message) > MAX_BATCH:
            reason = f"a batch holds at most {MAX_BATCH} calls, this one {len(message)}"
            return encode(error_response(None, errors.invalid_request(reason).to_json()))
        replies: list[dict[str, Any] | None] = [None] * len(message)
        pending = iter(enumerate(message))

        async def worker() -> None:
            for index, entry in pending:  # shared: each entry is taken by one worker
                replies[index] = await self.handle(connection, entry)

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(message))))))
        batch = [reply for reply in replies if reply is not None]
        return encode(batch) if batch else None

    async def handle(self, connection: ApiConnection, message: Any) -> dict[str, Any] | None:
        """One request object → its response object (None for a notification)."""
        if type(message) is RejectedRequest:  # malformed (xod/api/requests.py)
            return message.reply
        if not isinstance(message, dict):
            return error_response(None, errors.invalid_request().to_json())
        request_id = message.get("id", _NO_ID)
        method_name = message.get("method")
        if request_id is _NO_ID:
            return None  # a client notification: accepted and ignored, as xo-server does
        if not is_valid_id(request_id):
            return error_response(None, errors.invalid_request().to_json())
        if not isinstance(method_name, str):
            return error_response(request_id, errors.invalid_request().to_json())
        started = time.perf_counter()
        method = self.registry.get(method_name)
        user: User | None = None
        try:
            if method is None:
                raise errors.method_not_found(method_name)
            user = self._current_user(connection)
            result = await self.call(connection, method, message.get("params"), user)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not isinstance(error, errors.ApiError):
                log.warning("%s failed: %s: %s", method_name, type(error).__name__, error)
            # Admins get the details of unknown errors (xo-server's pipeline step 12).
            is_admin = user is not None and user.permission == "admin"
            error_object = errors.to_error_object(error, is_admin=is_admin)
            self._record(connection, method, f"error {error_object.get('code')}", started)
            return error_response(request_id, error_object)
        self._record(connection, method, "success", started)
        return _response(request_id, result)

    def _record(
        self, connection: ApiConnection, method: Method | None, outcome: str, started: float
    ) -> None:
        duration = time.perf_counter() - started
        # A name the client made up is neither a metrics label nor logged: the label set and
        # the log stay the size of the registry whatever anonymous clients send.
        label = UNKNOWN_METHOD if method is None else method.name
        metrics.observe_rpc(label, outcome, duration)
        if call_log.isEnabledFor(logging.INFO):
            # `extra` fields become the log line's own fields (xod/logs.py).
            call_log.info(
                "call",
                extra={
                    "method": label,
                    "user": connection.user_id,
                    "duration": round(duration, 6),
                    "outcome": outcome,
                },
            )

    def _current_user(self, connection: ApiConnection) -> User | None:
        if connection.user_id is None:
            return None
        # Re-read on every call: permission changes and deletions apply at once.
        user = self.services.store.users.get(connection.user_id)
        if user is None:
            connection.sign_out()
        return user

    async def call(
        self, connection: ApiConnection, method: Method, params: Any, user: User | None
    ) -> Any:
        """Run one method call for `user` (the caller, read once per call). Raises on failure."""
        method_name = method.name
        is_admin = user is not None and user.permission == "admin"
        check_permission(method.permission, user)
        if params is None:
            params = {}
        elif isinstance(params, list):
            params = {str(i): v for i, v in enumerate(params)}
        elif not isinstance(params, dict):
            raise errors.invalid_parameters([], "params must be an object")
        if "_log" in params and not is_admin:
            raise errors.unauthorized("admin")
        params.pop("_log", None)
        asynchronous = params.pop("_async", False)
        if asynchronous is not False and (method_name not in ACTIONS or asynchronous is not True):
            raise errors.invalid_parameter(
                "/_async",
                "_async",
                "_async must be true, and only actions accept it",
                schema_path="#/properties/_async",
            )
        wait_for_cache = params.pop("_waitForCache", False)
        if wait_for_cache is not False and (
            method_name not in ACTIONS or wait_for_cache is not True
        ):
            raise errors.invalid_parameter(
                "/_waitForCache",
                "_waitForCache",
                "_waitForCache must be true, and only actions accept it",
                schema_path="#/properties/_waitForCache",
            )
        if method.validator is not None:
            params = normalize_params(method, params)
            problems = method.validator.validate(params)
            if problems:
                raise errors.invalid_parameters(problems)
        context = CallContext(self.services, connection, user, method_name)
        if method_name not in ACTIONS:
            # Read-your-writes: a read waits until the cache shows this connection's writes.
            await caught_up(connection)
        # Reserved params (xod's own): `_async`, the action answers its task id at once;
        # `_waitForCache`, its answer waits until the cache shows its effects.
        reset = ASYNC_REQUESTED.set(asynchronous)
        reset_wait = WAIT_FOR_CACHE.set(wait_for_cache)
        try:
            result = await method.handler(context, params)
        finally:
            WAIT_FOR_CACHE.reset(reset_wait)
            ASYNC_REQUESTED.reset(reset)
        return True if result is None else result
