"""Actions with a progress bar.

The call goes out with `_async: true` (xod's reserved param: an action answers at once with the
id of its task), the task object is followed through `xod.subscribe {filter: {id}}` (its
`progress` moves 0 → 1 in the cache), and `task.wait` returns the action's result or error.
A method that is not an action refuses `_async` (invalid parameter `/_async`): it is then
called plainly, without a bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from xod.cli.errors import INVALID_PARAMETERS, CliError, RpcError
from xod.cli.progress import ProgressBar
from xod.cli.rpc import RpcConnection
from xod.cli.watch import entries

ASYNC_PARAM = "_async"
REDRAW_INTERVAL = 0.2  # the elapsed time keeps moving even when the progress does not


def refuses_async(error: RpcError) -> bool:
    if error.code != INVALID_PARAMETERS or not isinstance(error.data, dict):
        return False
    problems = error.data.get("errors") or []
    return any(isinstance(p, dict) and p.get("instancePath") == f"/{ASYNC_PARAM}" for p in problems)


def may_be_action(info: dict[str, Any] | None) -> bool:
    """xod marks its actions (`async: true`); older servers published them as `write`."""
    return info is not None and (
        info.get("async") is True or info.get("permission") in ("write", "admin")
    )


async def speaks_xod(connection: RpcConnection) -> bool:
    """Whether the server is xod (xo-server would take `_async` as an unknown param and run
    the call synchronously). Also stops `all`: one task needs no news of every object."""
    try:
        await connection.call("xod.setAllNotifications", {"enabled": False})
    except CliError:
        return False
    return True


async def _follow(connection: RpcConnection, task_id: str, bar: ProgressBar) -> None:
    reply = await connection.call(
        "xod.subscribe", {"filter": {"id": task_id}, "fields": ["progress", "status"]}
    )
    subscription = reply.get("subscription") if isinstance(reply, dict) else None
    async for message in connection.notifications():
        params = message.get("params")
        if message.get("method") != "xod.changes" or not isinstance(params, dict):
            continue
        if params.get("subscription") != subscription:
            continue
        for object_id, obj in entries(params.get("enter")):
            if object_id == task_id and isinstance(obj, dict):
                progress = obj.get("progress")
                if isinstance(progress, (int, float)):
                    bar.update(float(progress))


async def _redraw(bar: ProgressBar) -> None:
    while True:
        bar.draw()
        await asyncio.sleep(REDRAW_INTERVAL)


async def call_with_progress(
    connection: RpcConnection, method: str, params: dict[str, Any], info: dict[str, Any] | None
) -> Any:
    """The method's result, with a bar while it runs when it is an action on xod."""
    if not may_be_action(info) or not await speaks_xod(connection):
        return await connection.call(method, params)
    connection.listen()
    try:
        task_id = await connection.call(method, {**params, ASYNC_PARAM: True})
    except RpcError as error:
        if not refuses_async(error):
            raise
        return await connection.call(method, params)
    bar = ProgressBar(method)
    helpers = [
        asyncio.create_task(_follow(connection, task_id, bar)),
        asyncio.create_task(_redraw(bar)),
    ]
    success = False
    try:
        result = await connection.call("task.wait", {"id": task_id})
        success = True
        return result
    except asyncio.CancelledError:
        # Ctrl-C stops the waiting, not the action: say where it can still be followed.
        bar.finish(False)
        print(
            f"xod-cli: the action goes on as task {task_id}"
            f" (`xod-cli task.wait id={task_id}`, or task.cancel to stop it)",
            file=sys.stderr,
        )
        raise
    finally:
        for helper in helpers:
            helper.cancel()
        for helper in helpers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await helper
        bar.finish(success)
