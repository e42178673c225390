"""The dashboard's HTTP side: the page and its files (xod/web/), the cookie sign-in, and the
origin rule that makes a token cookie safe to hold.

A browser sends the `authenticationToken` cookie with every request to xod, whichever site
made it: a page elsewhere could open `ws://xod/api/` or POST with the user's rights. So a
request that carries the cookie and an `Origin` other than xod's own (or one of
`[http] allowed_origins`) is refused when it could act: a WebSocket upgrade or an unsafe
method. Clients that send no cookie (xo-lib, xo-cli, token-in-header REST clients) are not
concerned. Allowed origins also get CORS answers, with credentials.

The page signs in with `POST /signin` (password or token): xod answers with the token as an
`HttpOnly; SameSite=Strict` cookie (`Secure` under TLS), so no script ever reads it; the
page's WebSocket is then signed in at the upgrade, from the cookie.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import hdrs, web

from xod.api import errors
from xod.api.context import ApiConnection, CallContext
from xod.api.methods.session import sign_in
from xod.api.methods.token import delete_tokens
from xod.api.services import Services
from xod.store import User

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
COOKIE = "authenticationToken"
COOKIE_NAMES = (COOKIE, "token")  # XO's REST API also reads `token`
# Tokens the page creates at a password sign-in (deleted at sign-out); a token the user pasted
# is theirs and outlives the page's session.
DASHBOARD_CLIENT_PREFIX = "xod-dashboard:"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
CORS_MAX_AGE = "600"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers=PAGE_HEADERS,
    )


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


class Dashboard:
    """The page's routes and the origin guard, around one `Services`."""

    def __init__(self, services: Services, allowed_origins: Iterable[str] = ()) -> None:
        self.services = services
        self.allowed_origins = frozenset(o.rstrip("/") for o in allowed_origins)
        # Tells the page that xod restarted: its revisions mean nothing to the new process.
        self.instance = secrets.token_hex(8)

    def attach(self, app: web.Application) -> None:
        app.middlewares.append(self.origin_guard)
        app.router.add_get("/", self.page)
        app.router.add_get("/web/{path:.+}", self.asset)
        app.router.add_get("/session", self.session)
        app.router.add_post("/signin", self.sign_in)
        app.router.add_post("/signout", self.sign_out)

    # -- the origin rule ---------------------------------------------------------------------

    def origin_allowed(self, request: web.Request) -> bool:
        origin = request.headers.get(hdrs.ORIGIN)
        return origin is None or origin == own_origin(request) or origin in self.allowed_origins

    @web.middleware
    async def origin_guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None or origin == own_origin(request):
            return await handler(request)
        cross_allowed = origin in self.allowed_origins
        acting = _is_upgrade(request) or request.method not in SAFE_METHODS
        has_cookie = any(name in request.cookies for name in COOKIE_NAMES)
        if not cross_allowed and acting and (has_cookie or request.path in ("/signin", "/signout")):
            return _json({"error": f"origin {origin} is not allowed"}, 403)
        if cross_allowed and request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
            requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = "GET, POST, PUT, PATCH, DELETE"
            if requested:
                response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested
            response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = CORS_MAX_AGE
        else:
            response = await handler(request)
        if cross_allowed and not response.prepared:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
            response.headers.add(hdrs.VARY, "Origin")
        return response

    # -- the page ------------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB_ROOT / "index.html", headers=PAGE_HEADERS)

    async def asset(self, request: web.Request) -> web.StreamResponse:
        path = (WEB_ROOT / request.match_info["path"]).resolve()
        if not path.is_relative_to(WEB_ROOT) or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers=PAGE_HEADERS)

    # -- signing in ----------------------------------------------------------------------------

    async def _user_of(self, request: web.Request, credentials: dict[str, Any]) -> User:
        """The user `credentials` sign in, with session.signIn's checks and throttling."""
        connection = ApiConnection(request.remote, _never_closed)
        ctx = CallContext(self.services, connection, None, "session.signIn")
        try:
            await sign_in(ctx, credentials)
            user = self.services.store.users.get(connection.user_id or "")
        finally:
            connection.dispose()
        if user is None:  # deleted meanwhile
            raise errors.invalid_credentials()
        return user

    async def sign_in_by_cookie(self, request: web.Request, connection: ApiConnection) -> None:
        """Sign a new WebSocket connection in from its cookie (the origin guard let it through:
        the page is xod's own or an allowed one). A bad cookie leaves it signed out."""
        token = request.cookies.get(COOKIE) or request.cookies.get("token")
        if not token:
            return
        ctx = CallContext(self.services, connection, None, "session.signIn")
        try:
            await sign_in(ctx, {"token": token})
        except errors.ApiError:
            pass  # the page sees it is not signed in (session.getUser) and shows its sign-in

    async def session(self, request: web.Request) -> web.StreamResponse:
        """Who the cookie signs in, and this process's instance id."""
        token = request.cookies.get(COOKIE)
        user = None
        if token:
            try:
                user = (await self._user_of(request, {"token": token})).public()
            except errors.ApiError:
                user = None
        return _json({"instance": self.instance, "user": user})

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json(loads=orjson.loads)
        except ValueError:
            return _json({"error": "the body must be a JSON object"}, 400)
        if not isinstance(body, dict):
            return _json({"error": "the body must be a JSON object"}, 400)
        token = body.get("token")
        pasted = token if isinstance(token, str) and token else None
        credentials = (
            {"token": pasted}
            if pasted is not None
            else {"email": body.get("email"), "password": body.get("password")}
        )
        try:
            user = await self._user_of(request, credentials)
        except errors.ApiError as error:
            retry = error.data.get("retryAfter") if isinstance(error.data, dict) else None
            response = _json({"error": error.message}, 429 if retry else 401)
            if retry:
                response.headers[hdrs.RETRY_AFTER] = str(retry)
            return response
        tokens = self.services.store.tokens
        if pasted is not None:
            record = tokens.lookup(pasted)
            value, expiration = pasted, record.expiration if record else None
        else:
            created = tokens.create(
                user.id,
                description="xod dashboard sign-in",
                client_id=DASHBOARD_CLIENT_PREFIX + secrets.token_hex(8),
            )
            value, expiration = created.token, created.record.expiration
        response = _json({"user": user.public(), "instance": self.instance})
        max_age = None
        if expiration is not None:
            max_age = max(0, int(expiration / 1000 - time.time()))
        response.set_cookie(
            COOKIE,
            value,
            path="/",
            max_age=max_age,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        return response

    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        """Forget the cookie; a token the page created is deleted, and every connection signed
        in with it signed out."""
        token = request.cookies.get(COOKIE)
        tokens = self.services.store.tokens
        record = tokens.lookup(token) if token else None
        if record is not None and (record.client_id or "").startswith(DASHBOARD_CLIENT_PREFIX):
            connection = ApiConnection(request.remote, _never_closed)
            ctx = CallContext(self.services, connection, None, "token.deleteOwn")
            delete_tokens(ctx, {"tokens": [record.id]}, record.user_id)
        response = _json({"signedOut": True})
        response.set_cookie(
            COOKIE, "", path="/", max_age=0, httponly=True, samesite="Strict", secure=request.secure
        )
        return response


async def _never_closed(code: int, reason: str) -> None:
    """The close of a connection that only lives for one sign-in check."""
