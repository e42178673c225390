"""Authentication tokens of a user: `POST /rest/v0/users/{id|me}/authentication_tokens` (201,
the same client id refreshes its token) and `GET` of one's own tokens — through the JSON-RPC
`token.create` and `user.getAuthenticationTokens`, so the rules and the store are the same."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from xod.server.rest.context import Caller, RestContext
from xod.server.rest.errors import RestError, json_response
from xod.server.rest.listing import json_list_response
from xod.server.rest.objects import read_json

CREATED = 201


def _own(request: web.Request, caller: Caller) -> None:
    """Tokens are only ever one's own: another user's id is 403, as in Xen Orchestra."""
    user_id = request.match_info.get("id", "me")
    if user_id not in ("me", caller.user.id):
        raise RestError(
            403,
            "forbidden operation: create authentication token",
            {"operation": "create authentication token", "reason": "not your user"},
        )


async def create_token(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    _own(request, caller)
    body = await read_json(request)
    params: dict[str, Any] = {
        k: body[k] for k in ("description", "expiresIn", "client") if k in body
    }
    token = await rest.call(caller, "token.create", params)
    record = rest.services.store.tokens.lookup(token)
    assert record is not None  # just created
    # As in Xen Orchestra, the token's `id` is its value (shown this once: only its hash is
    # stored); the record's own id still names it in lists.
    view = {**record.public(), "id": token, "record_id": record.id}
    return json_response({"token": view}, CREATED)


async def list_tokens(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    _own(request, caller)
    return json_list_response(await rest.call(caller, "user.getAuthenticationTokens", {}))
