"""Who is calling: the `authenticationToken` (or `token`) cookie, or HTTP Basic — through the
JSON-RPC sign-in itself (xod/api/methods/session.py), so the throttle, the token's last uses
and the password check are the same ones. Xen Orchestra's rules: both at once is 400, none or a
bad one is 401 with `WWW-Authenticate`."""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Awaitable, Callable

from aiohttp import web

from xod.api.context import ApiConnection, CallContext
from xod.api.errors import ApiError
from xod.api.methods.session import sign_in
from xod.server.rest.context import Caller, RestContext
from xod.server.rest.errors import RestError, invalid_credentials

TOKEN_COOKIES = ("authenticationToken", "token")

Handler = Callable[[RestContext, web.Request, Caller], Awaitable[web.StreamResponse]]


async def _no_transport_to_close(code: int, reason: str) -> None:
    """A request's connection has nothing to close: the request ends on its own."""


def credentials_of(request: web.Request) -> dict[str, str]:
    token = next((request.cookies[n] for n in TOKEN_COOKIES if request.cookies.get(n)), None)
    header = request.headers.get("Authorization")
    if token is not None and header is not None:
        raise RestError(
            400, "Having multiple authentication methods is not supported, please choose one"
        )
    if token is not None:
        return {"token": token}
    if header is None:
        raise invalid_credentials()
    _scheme, _, encoded = header.strip().partition(" ")
    if not encoded.strip():
        raise RestError(400, "Malformed Authorization header")
    try:
        decoded = b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_credentials() from None
    # Split on the first colon only: a password may contain one.
    email, _, password = decoded.partition(":")
    return {"email": email, "password": password}


async def authenticate(rest: RestContext, request: web.Request) -> Caller:
    credentials = credentials_of(request)
    connection = ApiConnection(request.remote, _no_transport_to_close)
    try:
        await sign_in(CallContext(rest.services, connection, None, "rest"), credentials)
        user = rest.services.store.users.get(connection.user_id or "")
    except ApiError:
        connection.dispose()
        raise invalid_credentials() from None
    if user is None:
        connection.dispose()
        raise invalid_credentials()
    return Caller(connection, user)


def authenticated(
    rest: RestContext, handler: Handler
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler that signs the caller in for the request's duration."""

    async def handle(request: web.Request) -> web.StreamResponse:
        caller = await authenticate(rest, request)
        try:
            return await handler(rest, request, caller)
        finally:
            caller.connection.dispose()

    handle.__name__ = handler.__name__
    return handle
