"""One object: `GET`, `PATCH` (names, tags), tags `PUT`/`DELETE`, `DELETE`, and its
sub-collections. Every change is the JSON-RPC method's (vm.set, tag.add, vm.delete…)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from xod.api.schema import ParamsValidator
from xod.server.rest import listing
from xod.server.rest.collections import collection, find, sub_items
from xod.server.rest.context import Caller, RestContext
from xod.server.rest.declarations import (
    CAMEL_CASE,
    DELETE_METHODS,
    PATCH_BODY,
    PATCH_METHODS,
)
from xod.server.rest.errors import RestError, json_response
from xod.server.rest.params import json_body_object, listing_query

_PATCH_VALIDATOR = ParamsValidator(PATCH_BODY)
NO_CONTENT = 204


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body ({} when empty); 422 for anything else."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json_body_object(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise RestError(422, "the request body is not valid JSON") from None


def validate(validator: ParamsValidator, body: dict[str, Any]) -> None:
    problems = validator.validate(body)
    if problems:
        raise RestError(422, "invalid parameters", {"errors": problems})


async def _target(rest: RestContext, request: web.Request, caller: Caller) -> dict[str, Any]:
    coll = collection(request.match_info["collection"])
    return await find(rest, caller, coll, request.match_info["id"])


async def get_object(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    return json_response(await _target(rest, request, caller))


async def patch_object(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    obj = await _target(rest, request, caller)
    method = PATCH_METHODS[obj["type"]]  # routed only where declared
    body = await read_json(request)
    validate(_PATCH_VALIDATOR, body)
    params: dict[str, Any] = {"id": obj["id"]}
    for key, value in body.items():
        if key != "tags":
            params[CAMEL_CASE.get(key, key)] = value
    if len(params) > 1:
        await rest.call(caller, method, params)
    if "tags" in body:  # the new list replaces the old one
        wanted, current = set(body["tags"]), set(obj.get("tags") or ())
        for tag in sorted(current - wanted):
            await rest.call(caller, "tag.remove", {"id": obj["id"], "tag": tag})
        for tag in sorted(wanted - current):
            await rest.call(caller, "tag.add", {"id": obj["id"], "tag": tag})
    return web.Response(status=NO_CONTENT)


async def change_tag(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    obj = await _target(rest, request, caller)
    method = "tag.add" if request.method == "PUT" else "tag.remove"
    await rest.call(caller, method, {"id": obj["id"], "tag": request.match_info["tag"]})
    return web.Response(status=NO_CONTENT)


async def delete_object(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    obj = await _target(rest, request, caller)
    method = DELETE_METHODS[obj["type"]]  # routed only where declared
    await rest.call(caller, method, {"id": obj["id"]})
    return web.Response(status=NO_CONTENT)


async def get_sub_collection(
    rest: RestContext, request: web.Request, caller: Caller
) -> web.StreamResponse:
    coll = collection(request.match_info["collection"])
    sub = request.match_info["sub"]
    query = listing_query(request.query)
    if query.watch:
        raise RestError(400, "watch=true is available on collections, not sub-collections")
    obj = await find(rest, caller, coll, request.match_info["id"])
    encoded = rest.services.objects.encoded
    return await listing.respond(request, sub_items(rest, obj, sub), query, encoded)
