"""`GET /rrd_updates` on every simulated host, as xcp-rrdd serves it through xapi.

Authentication as xapi's HTTP handlers: `session_id` (cookie first, then query string), else
HTTP Basic credentials, else 401. `start` is required (400 without it). The answer covers the
host it is asked of: its own RRD when `host=true`, and the VMs resident on it (`vm_uuid` to
narrow them). `json` (or an Accept preferring JSON) selects JSON, else XML.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from xod.sim import rrd

if TYPE_CHECKING:
    from xod.sim.pool import SimPool

_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "X-Requested-With",
}
_UNAUTHORISED = b"<html><body><h1>HTTP 401 unauthorised</h1></body></html>"


def _authorised(pool: SimPool, request: web.BaseRequest) -> bool:
    session = request.cookies.get("session_id") or request.query.get("session_id")
    if session is not None:
        return pool.sessions.valid(session)
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(credentials).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return user == pool.config.username and password == pool.config.password


def _wants_json(request: web.BaseRequest) -> bool:
    if "json" in request.query:
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/xml" not in accept


def _int(request: web.BaseRequest, name: str, default: int | None) -> int | None:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        return int(float(text))
    except ValueError:
        raise web.HTTPBadRequest(text=f"bad {name}") from None


async def handle_rrd_updates(
    pool: SimPool, host_ref: str, request: web.BaseRequest
) -> web.Response:
    if not _authorised(pool, request):
        return web.Response(
            status=401,
            body=_UNAUTHORISED,
            headers={**_HEADERS, "WWW-Authenticate": 'Basic realm="xapi"'},
            content_type="text/html",
        )
    try:
        start = _int(request, "start", None)
        interval = _int(request, "interval", 0) or 0
    except web.HTTPBadRequest as error:
        return web.Response(status=400, text=error.text or "bad request", headers=_HEADERS)
    if start is None:
        return web.Response(status=400, text="start is required", headers=_HEADERS)
    vm_uuids = request.query.getall("vm_uuid", []) or None
    answer = rrd.rrd_updates(
        pool,
        host_ref,
        start=start,
        interval=interval,
        include_host=request.query.get("host") == "true",
        vm_uuids=vm_uuids,
    )
    if _wants_json(request):
        return web.Response(
            body=orjson.dumps(answer), headers=_HEADERS, content_type="application/json"
        )
    return web.Response(text=rrd.rrd_updates_xml(answer), headers=_HEADERS, content_type="text/xml")


async def handle_get(pool: SimPool, host_ref: str, request: web.BaseRequest) -> web.Response | None:
    """The simulator's GET handlers (None: not one of them)."""
    if request.path.rstrip("/") == "/rrd_updates":
        return await handle_rrd_updates(pool, host_ref, request)
    return None
