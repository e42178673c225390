"""`/rest/v0` on the daemon's aiohttp app: a sub-application with its routes and its error
middleware (every error is XO's JSON body, an unknown path included)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial

from aiohttp import web

from xod.api.dispatch import Dispatcher
from xod.server.fanout import FanoutConfig
from xod.server.rest import actions, docs, objects, openapi, tokens, transfers
from xod.server.rest.auth import Handler, authenticated
from xod.server.rest.collections import collection, items
from xod.server.rest.context import BASE, Caller, RestContext
from xod.server.rest.endpoints import ENDPOINTS
from xod.server.rest.errors import RestError, error_response, from_exception, json_response
from xod.server.rest.listing import respond
from xod.server.rest.params import listing_query
from xod.server.rest.tasks import RestTasks
from xod.server.rest.watch import watch

log = logging.getLogger("xod.server.rest")

RestHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def rest_errors(request: web.Request, handler: RestHandler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRedirection:
        raise
    except web.HTTPException as error:  # unknown path, wrong method (with its `Allow`)
        allow = error.headers.get("Allow")
        headers = None if allow is None else {"Allow": allow}
        return error_response(RestError(error.status, error.reason, headers=headers))
    except Exception as error:
        rest_error = from_exception(error)
        if rest_error.status == 500 and not isinstance(error, RestError):
            log.warning(
                "%s %s failed: %s: %s", request.method, request.path, type(error).__name__, error
            )
        return error_response(rest_error)


async def get_collection(
    rest: RestContext, request: web.Request, caller: Caller
) -> web.StreamResponse:
    coll = collection(request.match_info["collection"])
    query = listing_query(request.query)
    if query.watch:
        return await watch(rest, request, coll, query)
    encoded = rest.services.objects.encoded
    return await respond(request, await items(rest, caller, coll), query, encoded)


async def ping(request: web.Request) -> web.Response:
    return json_response({"result": "pong", "timestamp": int(time.time() * 1000)})


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"{BASE}/docs")


def rest_application(
    dispatcher: Dispatcher, live: FanoutConfig, send_buffer: int | None = None
) -> web.Application:
    """The `/rest/v0` sub-application, over the same services and methods as `/api/`."""
    rest = RestContext(dispatcher.services, dispatcher, RestTasks(), live, send_buffer)
    app = web.Application(middlewares=[rest_errors])
    auth = partial(authenticated, rest)
    document = openapi.document(dispatcher.services.version)
    add = app.router.add_route
    add("GET", "", root)
    add("GET", "/", root)
    add("GET", "/ping", ping)
    add("GET", "/docs", docs.handler(document))
    add("GET", "/docs/openapi.json", openapi.handler(document))
    add("GET", "/docs/swagger.json", openapi.handler(document))
    add("POST", "/users/authentication_tokens", auth(tokens.create_token))
    add("POST", "/users/{id}/authentication_tokens", auth(tokens.create_token))
    add("GET", "/users/{id}/authentication_tokens", auth(tokens.list_tokens))
    handlers: dict[str, Handler] = {
        "list": get_collection,
        "get": objects.get_object,
        "task": actions.get_task,
        "patch": objects.patch_object,
        "delete": objects.delete_object,
        "tag": objects.change_tag,
        "actions": actions.list_actions,
        "sub": objects.get_sub_collection,
    }
    for method, route, transfer in transfers.ROUTES:  # before the routes taking any {id}
        add(method, route, auth(transfer))
    for endpoint in ENDPOINTS:
        handler: Handler
        if endpoint.kind == "action":
            handler = actions.post_action if endpoint.method == "POST" else actions.get_action
        else:
            handler = handlers[endpoint.kind]
        add(endpoint.method, endpoint.route, auth(handler))

    async def end_watches(_: web.Application) -> None:
        for stream in list(rest.watches):
            stream.stop()

    app.on_shutdown.append(end_watches)
    return app


def install(
    app: web.Application,
    dispatcher: Dispatcher,
    live: FanoutConfig,
    send_buffer: int | None = None,
) -> None:
    app.add_subapp(BASE, rest_application(dispatcher, live, send_buffer))
