"""cloudConfig.*: stored cloud-init templates (user data and network configs), as xo-server keeps
them; anyone signed in reads them, admins write them."""

from __future__ import annotations

from typing import Any

from xod.api import errors
from xod.api.context import CallContext
from xod.api.registry import SIGNED_IN, Registry
from xod.store.cloud_configs import NETWORK


def register(registry: Registry) -> None:
    @registry.method("cloudConfig.getAll", permission=SIGNED_IN)
    async def get_all(ctx: CallContext, params: dict[str, Any]) -> Any:
        return [config.public() for config in ctx.services.store.cloud_configs.list()]

    @registry.method("cloudConfig.getAllNetworkConfigs", permission=SIGNED_IN)
    async def get_all_network_configs(ctx: CallContext, params: dict[str, Any]) -> Any:
        return [config.public() for config in ctx.services.store.cloud_configs.list(NETWORK)]

    @registry.method("cloudConfig.create", permission="admin")
    async def create(ctx: CallContext, params: dict[str, Any]) -> Any:
        configs = ctx.services.store.cloud_configs
        return configs.create(params["name"], params["template"]).public()

    @registry.method("cloudConfig.createNetworkConfig", permission="admin")
    async def create_network_config(ctx: CallContext, params: dict[str, Any]) -> Any:
        configs = ctx.services.store.cloud_configs
        return configs.create(params["name"], params["template"], NETWORK).public()

    @registry.method("cloudConfig.update", permission="admin")
    async def update(ctx: CallContext, params: dict[str, Any]) -> Any:
        configs = ctx.services.store.cloud_configs
        if not configs.update(params["id"], params.get("name"), params.get("template")):
            raise errors.no_such_object(params["id"], "cloud config")
        return True

    @registry.method("cloudConfig.delete", permission="admin")
    async def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
        ctx.services.store.cloud_configs.delete(params["id"])  # an unknown id is no error
        return True
