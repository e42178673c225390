"""Authentication and tasks of the simulator's transfer handlers (xod/sim/http_transfers.py),
as xapi's `xapi_http.ml` does them: `session_id` (cookie, then query) or HTTP Basic (a
temporary session, removed afterwards); the client's `task_id` or a task of the handler's own."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from xod.sim.errors import XapiFailure

if TYPE_CHECKING:
    from xod.sim.pool import SimPool

PROGRESS_INTERVAL = 0.2  # seconds between task progress updates (xapi: 10 s)


class Refused(Exception):
    """A transfer refused before its 200: the HTTP status to answer, the task failure."""

    def __init__(self, status: int, failure: XapiFailure) -> None:
        super().__init__(failure.code)
        self.status = status
        self.failure = failure


@dataclass
class Transfer:
    """One authenticated transfer: its pool, session and task."""

    pool: SimPool
    host: str
    session: str
    task: str
    temporary_session: bool
    last_progress: float = 0.0

    def progress(self, done: int, total: int) -> None:
        """Report progress (at most every PROGRESS_INTERVAL) and honour a cancellation."""
        self.pool.tasks.check_cancelled(self.task)
        now = time.monotonic()
        if total > 0 and now - self.last_progress >= PROGRESS_INTERVAL:
            self.last_progress = now
            self.pool.tasks.set_progress(self.task, round(min(done / total, 0.99), 4))

    async def call(self, method: str, *args: Any) -> Any:
        return await self.pool.call(method, [self.session, *args], host=self.host, local=True)

    def close(self) -> None:
        if self.temporary_session:
            self.pool.sessions.remove(self.session)


def param(request: web.BaseRequest, name: str) -> str | None:
    cookie = request.cookies.get(name)
    return cookie if cookie is not None else request.query.get(name)


def session_of(pool: SimPool, request: web.BaseRequest, host: str, local: bool) -> tuple[str, bool]:
    session = param(request, "session_id")
    if session is not None:
        if not pool.sessions.valid(session):
            raise Refused(401, XapiFailure("SESSION_AUTHENTICATION_FAILED", session))
        return session, False
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        originator = f"{request.remote} using Basic auth"
        return pool.sessions.login(user, password, originator, host=host, local=False), True
    if local:
        return pool.sessions.login("root", "", "local transfer", host=host, local=True), True
    raise Refused(401, XapiFailure("SESSION_AUTHENTICATION_FAILED", "no credentials"))


def open_transfer(
    pool: SimPool, request: web.BaseRequest, host: str, local: bool, name: str
) -> Transfer:
    task = param(request, "task_id")
    if task is not None and not pool.tasks.is_pending(task):
        raise Refused(400, XapiFailure("HANDLE_INVALID", "task", task))
    try:
        session, temporary = session_of(pool, request, host, local)
    except XapiFailure as failure:  # Basic auth with wrong credentials
        if task is not None:
            pool.tasks.fail(task, failure)
        raise Refused(401, failure) from None
    except Refused as refused:
        if task is not None:
            pool.tasks.fail(task, refused.failure)
        raise
    if task is None:
        task = pool.tasks.create(name, host)
    return Transfer(pool, host, session, task, temporary)


def refusal(refused: Refused) -> web.Response:
    headers = {"Connection": "close", "Content-Type": "text/html"}
    if refused.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="xapi"'
    body = f"<html><body><h1>HTTP {refused.status}</h1>{refused.failure.code}</body></html>"
    return web.Response(status=refused.status, body=body.encode(), headers=headers)


def resolve(pool: SimPool, cls: str, value: str | None) -> str:
    if not value:
        raise Refused(400, XapiFailure("INTERNAL_ERROR", f"missing {cls} parameter"))
    if value.startswith("OpaqueRef:"):
        if pool.db.find(cls, value) is None:
            raise Refused(404, XapiFailure("HANDLE_INVALID", cls, value))
        return value
    try:
        return pool.db.by_uuid(cls, value)
    except XapiFailure as failure:
        raise Refused(404, failure) from None


def cancel_requested(pool: SimPool, task: str) -> bool:
    try:
        pool.tasks.check_cancelled(task)
    except XapiFailure:
        return True
    return False


def drop(request: web.BaseRequest) -> None:
    """End the connection without the clean end of the body: the client sees it cut short."""
    if request.transport is not None:
        request.transport.abort()
