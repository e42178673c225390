"""server.*: registered pool masters, driving the cache's pool connections."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from xod.api import errors
from xod.api.context import CallContext
from xod.api.registry import Registry
from xod.api.services import Services
from xod.store import DuplicateServer, ServerRecord

_CONNECTION_FIELDS = ("host", "username", "password", "allowUnauthorized", "httpProxy")
_FIELD_COLUMNS = {
    "label": "label",
    "host": "host",
    "username": "username",
    "password": "password",
    "allowUnauthorized": "allow_unauthorized",
    "readOnly": "read_only",
    "httpProxy": "http_proxy",
}


def server_url(host: str) -> str:
    """XO's `host` is `address[:port]` reached over HTTPS; a full URL is taken as is."""
    return host if "://" in host else f"https://{host}"


def connect(services: Services, record: ServerRecord) -> None:
    """Start syncing a registered server in the background (no-op if already started)."""
    if record.id in services.pools:
        return
    options = dict(services.connection_options)
    if record.http_proxy:
        options["http_proxy"] = record.http_proxy
    services.pools.add(
        record.id,
        server_url(record.host),
        record.username,
        record.password,
        allow_unauthorized=record.allow_unauthorized,
        **options,
    )


async def wait_connected(services: Services, server_id: str, timeout: float) -> str | None:
    """Wait until the pool is synced; the last error if it is not within `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            await services.pools.sync_of(server_id).wait_synced()
        return None
    except TimeoutError:
        return services.pools.status(server_id).last_error or "timed out connecting"


def decorate(services: Services, record: ServerRecord) -> dict[str, Any]:
    """The server.getAll record: the stored one plus live status, error and pool facts."""
    if record.id not in services.pools:
        return record.public("disconnected")
    status = services.pools.status(record.id)
    pool_facts: dict[str, Any] = {}
    if status.pool_id is not None:
        pool = services.objects.get(status.pool_id)
        pool_facts["poolId"] = status.pool_id
        if pool is not None:
            pool_facts["master"] = pool.get("master")
            pool_facts["poolNameLabel"] = pool.get("name_label")
            pool_facts["poolNameDescription"] = pool.get("name_description")
    if status.last_error and not status.synced:
        record = dataclasses.replace(record, error={"message": status.last_error})
    state = status.status if status.status in ("connected", "connecting") else "disconnected"
    if state == "connected" and not status.synced:
        state = "connecting"
    return record.public(state, pool_facts)


def _get(services: Services, server_id: str) -> ServerRecord:
    record = services.store.servers.get(server_id)
    if record is None:
        raise errors.no_such_object(server_id, "xenServer")
    return record


def register(registry: Registry) -> None:
    @registry.method("server.add", permission="admin")
    async def add(ctx: CallContext, params: dict[str, Any]) -> Any:
        services = ctx.services
        auto_connect = params.get("autoConnect", True)
        try:
            record = services.store.servers.add(
                params["host"],
                params["username"],
                params["password"],
                label=params.get("label"),
                enabled=auto_connect,
                allow_unauthorized=params.get("allowUnauthorized", False),
                http_proxy=params.get("httpProxy"),
            )
        except DuplicateServer:
            raise errors.object_already_exists(params["host"], "server") from None
        if auto_connect:
            connect(services, record)
        return record.id

    @registry.method("server.remove", permission="admin")
    async def remove(ctx: CallContext, params: dict[str, Any]) -> Any:
        record = _get(ctx.services, params["id"])
        await ctx.services.pools.remove(record.id)
        ctx.services.store.servers.remove(record.id)
        return True

    @registry.method("server.getAll", permission="admin")
    async def get_all(ctx: CallContext, params: dict[str, Any]) -> Any:
        services = ctx.services
        return [decorate(services, record) for record in services.store.servers.list()]

    @registry.method("server.set", permission="admin")
    async def set_server(ctx: CallContext, params: dict[str, Any]) -> Any:
        services = ctx.services
        record = _get(services, params["id"])
        changes = {_FIELD_COLUMNS[k]: v for k, v in params.items() if k in _FIELD_COLUMNS}
        if record.id in services.pools and any(k in params for k in _CONNECTION_FIELDS):
            raise errors.forbidden_operation(
                "set", "connection settings cannot change while the server is connected"
            )
        try:
            services.store.servers.update(record.id, **changes)
        except DuplicateServer:
            raise errors.object_already_exists(params.get("host"), "server") from None
        return True

    @registry.method("server.enable", permission="admin")
    async def enable(ctx: CallContext, params: dict[str, Any]) -> Any:
        services = ctx.services
        record = _get(services, params["id"])
        if record.id in services.pools:
            raise errors.incorrect_state("connected", "disconnected", record.id, "status")
        connect(services, record)
        error = await wait_connected(services, record.id, services.connect_timeout)
        if error is not None:
            await services.pools.remove(record.id)
            services.store.servers.update(record.id, error={"message": error})
            raise errors.server_unreachable(record.id)
        services.store.servers.update(record.id, enabled=True, error=None)
        return True

    @registry.method("server.disable", permission="admin")
    async def disable(ctx: CallContext, params: dict[str, Any]) -> Any:
        services = ctx.services
        record = _get(services, params["id"])
        services.store.servers.set_enabled(record.id, False)
        await services.pools.remove(record.id)
        return True
