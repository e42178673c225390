"""task.*: XAPI tasks (the `task` objects of the cache): cancel, destroy, and xod's task.wait."""

from __future__ import annotations

import asyncio
from typing import Any

from xod.api.commands import ACTION_HANDLERS, Command, action
from xod.api.context import CallContext
from xod.api.jobs import commands_of
from xod.api.owners import ForwardToOwner, forwarding_of
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
        user = ctx.require_user()
        command = Command(commands_of(ctx.services), "task.wait", user=user)
        # In a cluster, the task's pool (and an `_async` action's job) is its owner's.
        forwarding = forwarding_of(ctx.services)
        server_id = forwarding.tasks.get(params["id"])  # an `_async` action forwarded from here
        if server_id is None:
            try:
                return await wait_for(command, params)
            except ForwardToOwner as moved:
                server_id = moved.server_id
        assert forwarding.forward is not None
        return await forwarding.forward(server_id, "task.wait", params, False, user.id)

    ACTION_HANDLERS["task.wait"] = wait_for


async def wait_for(command: Command, params: dict[str, Any]) -> Any:
    """task.wait where the task's pool is synced: here, or on its owner for another instance."""
    commands = command.commands
    access = commands.services.access
    user = command.user
    assert user is not None
    task_id = params["id"]
    job = commands.job(task_id)
    if job is not None:
        # An `_async` action: its whole outcome (every call, and the cache caught up), for
        # whoever started it or may see its task.
        if commands.job_owner(task_id) != user.id:
            access.check(user, task_id, "view")
        return await asyncio.shield(job)
    task = command.resolve(task_id, "task")  # on a non-owner: ForwardToOwner
    access.check(user, task["id"], "view")
    ref = task["_xapiRef"]
    try:
        result = await command.wait_task(ref, task["name_label"], destroy=False)
    except XapiError as error:
        raise command.translate(error) from None
    if isinstance(result, str) and result.startswith("OpaqueRef:"):
        return command.id_of(result) or result
    return result
