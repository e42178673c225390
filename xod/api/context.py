"""What a method handler sees: the calling connection and the call (the daemon's services are
xod/api/services.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from xod.api import errors
from xod.api.services import Services
from xod.api.sessions import ExpiryTimers, SessionIndex
from xod.store import User


class ApiConnection:
    """One client connection's state: who signed in, until when, and how to close it.
    Transport-agnostic: the edge passes `close`; what is sent goes through the edge (the
    WebSocket's outbound side is xod/server/peer.py).
    """

    # Thousands of idle connections are the common case: no per-instance dict.
    __slots__ = (
        "_close",
        "_expiry",
        "closed",
        "expiration_ms",
        "own_writes",
        "remote",
        "sessions",
        "token_id",
        "user_id",
    )

    def __init__(
        self,
        remote: str | None,
        close: Callable[[int, str], Awaitable[None]],
        sessions: SessionIndex | None = None,
    ) -> None:
        self.remote = remote
        self.sessions = sessions
        self.user_id: str | None = None
        # The token record this connection signed in with (None for a password sign-in).
        self.token_id: str | None = None
        self.expiration_ms: int | None = None
        self._close = close
        # Shared with every connection of the daemon (per connection without a session index).
        self._expiry = sessions.expiry if sessions is not None else ExpiryTimers()
        self.closed = False
        # Write barriers of this connection's actions not yet in the cache (xod/api/barriers.py).
        self.own_writes: set[asyncio.Task[None]] | None = None

    def sign_in(self, user: User, expiration_ms: int | None, token_id: str | None = None) -> None:
        self._unindex()
        self.user_id = user.id
        self.token_id = token_id
        self.set_expiration(expiration_ms)
        if self.sessions is not None:
            self.sessions.add(self)

    def sign_out(self) -> None:
        self._unindex()
        self.user_id = None
        self.token_id = None
        self.set_expiration(None)

    def _unindex(self) -> None:
        if self.sessions is not None:
            self.sessions.discard(self, self.user_id)

    def set_expiration(self, expiration_ms: int | None) -> None:
        if self.expiration_ms is not None:
            self._expiry.discard(self, self.expiration_ms)
        self.expiration_ms = expiration_ms
        if expiration_ms is not None:
            self._expiry.add(self, expiration_ms)

    def expired(self) -> bool:
        return self.expiration_ms is not None and time.time() * 1000 >= self.expiration_ms

    def expire(self) -> None:
        """The expiry time has come: close (called by the expiry timer)."""
        task = asyncio.ensure_future(self.close(4001, "authentication token expired"))
        # Retrieve the outcome so asyncio never logs it as unhandled (a cancelled task has none).
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            await self._close(code, reason)

    def dispose(self) -> None:
        self.closed = True
        self._unindex()
        if self.expiration_ms is not None:
            self._expiry.discard(self, self.expiration_ms)


@dataclass(slots=True)
class CallContext:
    services: Services
    connection: ApiConnection
    user: User | None
    method: str

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.permission == "admin"

    def require_user(self) -> User:
        if self.user is None:
            raise errors.unauthorized()
        return self.user
