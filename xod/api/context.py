"""What a method handler sees: the daemon's services, the calling connection, the caller."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xod import __version__
from xod.cache.pools import PoolManager
from xod.cache.store import ObjectStore
from xod.store import SignInThrottle, Store, User

if TYPE_CHECKING:
    from xod.api.commands import Commands

Stream = Callable[[], AsyncIterator[bytes]]

DEFAULT_FAILOVER_TIMEOUT = 60.0
# What expiry timers run in. By default a timer keeps a copy of the context it was set from
# (the sign-in call's, with what that call set in it) for the token's lifetime.
_TIMER_CONTEXT = contextvars.Context()


class TooManyDownloads(Exception):
    """Every `$getFrom` slot is taken by URLs not yet fetched."""


class OneShotUrls:
    """`$getFrom` URLs: `/api/<random token>` served once, then forgotten (or after `ttl`).

    Each owner (a user) may hold `per_owner` pending URLs: a new one replaces the owner's
    oldest, never someone else's; when all `limit` are taken by others, registering fails.
    """

    def __init__(self, ttl: float = 60.0, limit: int = 1000, per_owner: int = 8) -> None:
        self.ttl = ttl
        self.limit = limit
        self.per_owner = per_owner
        self._entries: dict[str, tuple[float, str, Stream, str | None]] = {}

    def register(
        self, stream: Stream, content_type: str = "application/json", owner: str | None = None
    ) -> str:
        now = time.monotonic()
        entries = self._entries
        for key in [k for k, entry in entries.items() if entry[0] < now]:
            del entries[key]
        owned = [k for k, entry in entries.items() if entry[3] == owner]
        for key in owned[: max(0, len(owned) - self.per_owner + 1)]:
            del entries[key]
        if len(entries) >= self.limit:
            raise TooManyDownloads(f"{self.limit} downloads are pending: try again later")
        token = secrets.token_urlsafe(32)
        entries[token] = (now + self.ttl, content_type, stream, owner)
        return f"/api/{token}"

    def take(self, token: str) -> tuple[str, Stream] | None:
        entry = self._entries.pop(token, None)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1], entry[2]


class SignInGate:
    """One password check at a time per client address and per identity.

    The throttle decides from failures already recorded; without this, every attempt in flight
    (concurrent frames, a batch) would pass its check before the first failure is recorded.
    Waiters re-check the throttle once it is their turn.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, *keys: str | None) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted({k for k in keys if k}):  # one order: no deadlock
                stack.enter_context(self._counted(key))
                await stack.enter_async_context(self._locks[key])
            yield

    @contextlib.contextmanager
    def _counted(self, key: str) -> Iterator[None]:
        # Locks are made on demand and dropped with their last user: memory stays bounded.
        self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]


class ExpiryTimers:
    """One timer per expiry time, shared by the connections that expire then (all those signed
    in with one token): thousands of idle connections do not hold a timer each."""

    def __init__(self) -> None:
        self._due: dict[int, tuple[asyncio.TimerHandle, set[ApiConnection]]] = {}

    def add(self, connection: ApiConnection, expiration_ms: int) -> None:
        entry = self._due.get(expiration_ms)
        if entry is None:
            delay = max(0.0, expiration_ms / 1000 - time.time())
            timer = asyncio.get_running_loop().call_later(
                delay, self._fire, expiration_ms, context=_TIMER_CONTEXT
            )
            entry = self._due[expiration_ms] = (timer, set())
        entry[1].add(connection)

    def discard(self, connection: ApiConnection, expiration_ms: int) -> None:
        entry = self._due.get(expiration_ms)
        if entry is not None:
            entry[1].discard(connection)
            if not entry[1]:
                entry[0].cancel()
                del self._due[expiration_ms]

    def _fire(self, expiration_ms: int) -> None:
        _timer, connections = self._due.pop(expiration_ms)
        for connection in connections:
            connection.expire()


class SessionIndex:
    """The signed-in connections per user, so that deleting a user or a token signs out the
    connections that used it at once (not at their next call or the token's old expiry)."""

    def __init__(self) -> None:
        self._by_user: dict[str, set[ApiConnection]] = {}
        self.expiry = ExpiryTimers()

    def add(self, connection: ApiConnection) -> None:
        if connection.user_id is not None:
            self._by_user.setdefault(connection.user_id, set()).add(connection)

    def discard(self, connection: ApiConnection, user_id: str | None) -> None:
        connections = self._by_user.get(user_id) if user_id is not None else None
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._by_user[user_id]  # type: ignore[arg-type]

    def of_user(self, user_id: str) -> list[ApiConnection]:
        return list(self._by_user.get(user_id, ()))

    def signed_in_by_token(self) -> list[ApiConnection]:
        return [c for cs in self._by_user.values() for c in cs if c.token_id is not None]


@dataclass
class Services:
    """The daemon-wide state every handler may use."""

    store: Store
    objects: ObjectStore
    pools: PoolManager
    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    oneshot: OneShotUrls = field(default_factory=OneShotUrls)
    sign_in_gate: SignInGate = field(default_factory=SignInGate)
    sessions: SessionIndex = field(default_factory=SessionIndex)
    version: str = __version__
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
        # Write barriers of this connection's actions not yet in the cache (xod/api/commands.py).
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
        from xod.api.errors import unauthorized

        if self.user is None:
            raise unauthorized()
        return self.user
