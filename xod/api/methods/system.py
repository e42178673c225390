"""system.* discovery and rpc.discover (OpenRPC), both from the registry."""

from __future__ import annotations

import time
from typing import Any

from xod.api import errors
from xod.api.context import CallContext
from xod.api.registry import ANONYMOUS, SIGNED_IN, Registry

API_VERSION = "0.1"


def _local_timezone() -> str:
    try:
        from pathlib import Path

        link = Path("/etc/localtime").resolve()
        parts = link.parts
        if "zoneinfo" in parts:
            return "/".join(parts[parts.index("zoneinfo") + 1 :])
    except OSError:
        pass
    return time.tzname[0] or "UTC"


def register(registry: Registry) -> None:
    @registry.method("system.getMethodsInfo", permission=ANONYMOUS)
    async def get_methods_info(ctx: CallContext, params: dict[str, Any]) -> Any:
        return registry.methods_info()

    @registry.method("system.listMethods", permission=ANONYMOUS)
    async def list_methods(ctx: CallContext, params: dict[str, Any]) -> Any:
        return registry.names()

    @registry.method("system.methodSignature", permission=ANONYMOUS)
    async def method_signature(ctx: CallContext, params: dict[str, Any]) -> Any:
        method = registry.get(params["method"])
        if method is None:
            # xo-server's own quirk, kept: `no such object undefined`, data {}.
            raise errors.ApiError(1, "no such object undefined", {})
        return [{"name": method.name, **method.info()}]

    @registry.method("system.getServerVersion", permission=ANONYMOUS)
    async def get_server_version(ctx: CallContext, params: dict[str, Any]) -> Any:
        return ctx.services.version

    @registry.method("system.getVersion", permission=ANONYMOUS)
    async def get_version(ctx: CallContext, params: dict[str, Any]) -> Any:
        return API_VERSION

    @registry.method("system.getServerTimezone", permission=SIGNED_IN)
    async def get_server_timezone(ctx: CallContext, params: dict[str, Any]) -> Any:
        return _local_timezone()

    @registry.method("rpc.discover", permission=ANONYMOUS)
    async def discover(ctx: CallContext, params: dict[str, Any]) -> Any:
        return registry.openrpc(ctx.services.version)
