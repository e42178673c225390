"""Actions and their tasks: `POST /…/{id}/actions/{name}` runs the declared JSON-RPC action
(xod/server/rest/declarations.py) as the caller — 202 with the task, or with `?sync=true` its
outcome — and `GET /rest/v0/tasks/{id}[?wait=true|result]` follows it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from aiohttp import web

from xod.api.jobs import commands_of
from xod.server.rest.collections import collection, find, href_of
from xod.server.rest.context import BASE, Caller, RestContext
from xod.server.rest.declarations import ACTIONS, RestAction
from xod.server.rest.errors import RestError, json_response
from xod.server.rest.objects import NO_CONTENT, read_json, validate
from xod.server.rest.params import flag
from xod.server.rest.tasks import RestTask

ACCEPTED = 202
CREATED = 201


def _declared(obj: dict[str, Any], name: str) -> RestAction:
    action = ACTIONS.get(obj.get("type", ""), {}).get(name)
    if action is None:
        raise RestError(404, f"no such action {name} for {obj.get('type')}")
    return action


async def _target(rest: RestContext, request: web.Request, caller: Caller) -> dict[str, Any]:
    coll = collection(request.match_info["collection"])
    return await find(rest, caller, coll, request.match_info["id"])


async def list_actions(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    obj = await _target(rest, request, caller)
    base = request.path.rstrip("/")
    return json_response([f"{base}/{name}" for name in ACTIONS.get(obj.get("type", ""), {})])


async def get_action(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    """The body an action takes (as JSON Schema), as xo-server's legacy discovery."""
    obj = await _target(rest, request, caller)
    action = _declared(obj, request.match_info["action"])
    return json_response({"description": action.description, "params": action.validator.schema})


async def post_action(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    obj = await _target(rest, request, caller)
    action = _declared(obj, request.match_info["action"])
    sync = flag(request.query, "sync")
    body = await read_json(request)
    validate(action.validator, body)
    params = action.to_params(obj, body)
    if sync:
        result = await rest.call(caller, action.method, params)
        return _outcome(rest, action, result)
    result = await rest.call(caller, action.method, {**params, "_async": True})
    job = commands_of(rest.services).job(result) if isinstance(result, str) else None
    outcome: asyncio.Future[Any]
    if job is not None:
        task_id, outcome = result, job
    else:  # the action ended before it needed a task: its outcome is known already
        task_id, outcome = str(uuid.uuid4()), asyncio.get_running_loop().create_future()
        outcome.set_result(result)
    rest.tasks.add(
        RestTask(
            id=task_id,
            name=f"REST API: {action.name} {obj['type']}",
            object_id=obj["id"],
            object_type=obj["type"],
            user_id=caller.user.id,
            outcome=outcome,
        )
    )
    location = f"{BASE}/tasks/{task_id}"
    return json_response({"taskId": task_id}, ACCEPTED, {"Location": location})


def _outcome(rest: RestContext, action: RestAction, result: Any) -> web.Response:
    if action.creates and isinstance(result, str):
        created = rest.services.objects.get(result)
        headers = {"Location": href_of(created)} if created is not None else None
        return json_response({"id": result}, CREATED, headers)
    return web.Response(status=NO_CONTENT)


async def get_task(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    task_id = request.match_info["id"]
    wait = request.query.get("wait")
    waiting = wait is not None and wait.lower() not in ("false", "0", "no")
    record = rest.tasks.get(task_id)
    if record is not None:
        await find(rest, caller, collection("tasks"), task_id)  # the read permission
        if waiting:
            with contextlib.suppress(Exception):
                await asyncio.shield(record.outcome)
        return json_response(record.view())
    obj = await find(rest, caller, collection("tasks"), task_id)
    if waiting and obj.get("status") == "pending":
        follower = commands_of(rest.services).follower
        waiter = follower.follow(obj["_xapiRef"], task_id)
        try:
            finished = await waiter.finished
        finally:
            follower.forget(obj["_xapiRef"], waiter)
        obj = finished or rest.services.objects.get(task_id) or {**obj, "status": "unknown"}
    return json_response(obj)
