"""Call patterns the device, network, pool and host methods share: an XAPI read answered as it
is, and xo-server's `update_other_config` (a key replaced, or removed with None)."""

from __future__ import annotations

from typing import Any

from xod.api import errors
from xod.api.commands import Command
from xod.api.context import CallContext
from xod.api.jobs import commands_of
from xod.xapi.errors import XapiError


async def query(
    ctx: CallContext, method: str, object_id: str, object_type: str, xapi_method: str, *args: Any
) -> Any:
    """`xapi_method(<object's ref>, *args)` on the object's pool, errors mapped to XO's. A read
    is allowed on a read-only server, so the object is resolved without the action's check,
    and there is nothing to wait for in the cache."""
    commands = commands_of(ctx.services)
    obj = ctx.services.objects.get(object_id)
    if obj is None or obj.get("type") != object_type:
        raise errors.no_such_object(object_id, object_type)
    server_id = commands.server_of_pool(obj.get("$pool"))
    if server_id is None:
        raise errors.server_unreachable(object_id)
    command = Command(commands, method, sync=ctx.services.pools.sync_of(server_id))
    command.object_id = object_id
    try:
        return await command.send(xapi_method, obj["_xapiRef"], *args)
    except XapiError as error:
        raise command.translate(error) from None


async def update_other_config(
    command: Command, xapi_class: str, ref: str, key: str, value: str | None
) -> None:
    """`other_config[key] = value` (None: the key removed); xapi has no setter for one key."""
    await command.call(f"{xapi_class}.remove_from_other_config", ref, key)
    if value is not None:
        await command.call(f"{xapi_class}.add_to_other_config", ref, key, value)
