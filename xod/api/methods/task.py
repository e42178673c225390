"""task.*: XAPI tasks (the `task` objects of the cache): cancel, destroy, and xod's task.wait."""

from __future__ import annotations

import asyncio
from typing import Any

from xod.api.commands import Command, action
from xod.api.context import CallContext
from xod.api.jobs import commands_of
from xod.api.registry import SIGNED_IN, Registry
from xod.xapi.errors import XapiError


def register(registry: Registry) -> None:
    @action(registry, "task.cancel", resolve=[("id", "task", "administrate")])
    async def cancel(command: Command, params: dict[str, Any]) -> None:
        await command.call("task.cancel", command.ref_of(params["id"], "task"))

    @action(registry, "task.destroy", resolve=[("id", "task", "administrate")])
    async def destroy(command: Command, params: dict[str, Any]) -> None:
        await command.call("task.destroy", command.ref_of(params["id"], "task"))

    @registry.method("task.wait", permission=SIGNED_IN)
    async def wait(ctx: CallContext, params: dict[str, Any]) -> Any:
        commands = commands_of(ctx.services)
        task_id = params["id"]
        job = commands.job(task_id)
        user = ctx.require_user()
        if job is not None:
            # An `_async` action: its whole outcome (every call, and the cache caught up), for
            # whoever started it or may see its task.
            if commands.job_owner(task_id) != user.id:
                ctx.services.access.check(user, task_id, "view")
            return await asyncio.shield(job)
        command = Command(commands, "task.wait")
        task = command.resolve(task_id, "task")
        ctx.services.access.check(user, task["id"], "view")
        ref = task["_xapiRef"]
        try:
            result = await command.wait_task(ref, task["name_label"], destroy=False)
        except XapiError as error:
            raise command.translate(error) from None
        if isinstance(result, str) and result.startswith("OpaqueRef:"):
            return command.id_of(result) or result
        return result
