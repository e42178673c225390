"""What a method handler sees: the daemon's services, the calling connection, the caller."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xod.cache.pools import PoolManager
from xod.cache.store import ObjectStore
from xod.store import SignInThrottle, Store, User

if TYPE_CHECKING:
    from xod.api.commands import Commands

Stream = Callable[[], AsyncIterator[bytes]]

DEFAULT_FAILOVER_TIMEOUT = 60.0


class OneShotUrls:
    """`$getFrom` URLs: `/api/<random token>` served once, then forgotten (or after `ttl`)."""

    def __init__(self, ttl: float = 60.0, limit: int = 1000) -> None:
        self.ttl = ttl
        self.limit = limit
        self._entries: dict[str, tuple[float, str, Stream]] = {}

    def register(self, stream: Stream, content_type: str = "application/json") -> str:
        now = time.monotonic()
        for key in [k for k, (deadline, _, _) in self._entries.items() if deadline < now]:
            del self._entries[key]
        while len(self._entries) >= self.limit:
            del self._entries[next(iter(self._entries))]
        token = secrets.token_urlsafe(32)
        self._entries[token] = (now + self.ttl, content_type, stream)
        return f"/api/{token}"

    def take(self, token: str) -> tuple[str, Stream] | None:
        entry = self._entries.pop(token, None)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1], entry[2]


@dataclass
class Services:
    """The daemon-wide state every handler may use."""

    store: Store
    objects: ObjectStore
    pools: PoolManager
    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    oneshot: OneShotUrls = field(default_factory=OneShotUrls)
    version: str = "0.1.0"
    connect_timeout: float = 20.0
    connection_options: dict[str, Any] = field(default_factory=dict)
    # How long an action waits for a pool's (new) master before failing.
    failover_timeout: float = DEFAULT_FAILOVER_TIMEOUT
    # The actions' daemon-wide state, made on first use by `xod.api.commands.commands_of`.
    commands: Commands | None = None


class ApiConnection:
    """One client connection's state: who signed in, until when, and how to close it.
    Transport-agnostic: the edge passes `close`; what is sent goes through the edge (the
    WebSocket's outbound side is xod/server/peer.py).
    """

    def __init__(
        self,
        remote: str | None,
        close: Callable[[int, str], Awaitable[None]],
    ) -> None:
        self.remote = remote
        self.user_id: str | None = None
        self.expiration_ms: int | None = None
        self._close = close
        self._expiry_timer: asyncio.TimerHandle | None = None
        self.closed = False

    def sign_in(self, user: User, expiration_ms: int | None) -> None:
        self.user_id = user.id
        self.set_expiration(expiration_ms)

    def sign_out(self) -> None:
        self.user_id = None
        self.set_expiration(None)

    def set_expiration(self, expiration_ms: int | None) -> None:
        self.expiration_ms = expiration_ms
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        if expiration_ms is not None:
            delay = max(0.0, expiration_ms / 1000 - time.time())
            loop = asyncio.get_running_loop()
            self._expiry_timer = loop.call_later(delay, self._expire)

    def expired(self) -> bool:
        return self.expiration_ms is not None and time.time() * 1000 >= self.expiration_ms

    def _expire(self) -> None:
        self._expiry_timer = None
        task = asyncio.ensure_future(self.close(4001, "authentication token expired"))
        task.add_done_callback(lambda t: t.exception())

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            await self._close(code, reason)

    def dispose(self) -> None:
        self.closed = True
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None


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
        from xod.api.errors import unauthorized

        if self.user is None:
            raise unauthorized()
        return self.user
