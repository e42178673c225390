"""Signed-in connections, daemon-wide: one password check at a time per address and identity,
the timers that end sessions when their token expires, and the index of who is signed in
(to sign a deleted user's or token's connections out at once)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

# What expiry timers run in. By default a timer keeps a copy of the context it was set from
# (the sign-in call's, with what that call set in it) for the token's lifetime.
_TIMER_CONTEXT = contextvars.Context()


class SignedIn(Protocol):
    """What the session bookkeeping needs of a connection (xod/api/context.py's ApiConnection)."""

    @property
    def user_id(self) -> str | None: ...

    @property
    def token_id(self) -> str | None: ...

    def expire(self) -> None: ...

    def sign_out(self) -> None: ...


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
        self._due: dict[int, tuple[asyncio.TimerHandle, set[SignedIn]]] = {}

    def add(self, connection: SignedIn, expiration_ms: int) -> None:
        entry = self._due.get(expiration_ms)
        if entry is None:
            delay = max(0.0, expiration_ms / 1000 - time.time())
            timer = asyncio.get_running_loop().call_later(
                delay, self._fire, expiration_ms, context=_TIMER_CONTEXT
            )
            entry = self._due[expiration_ms] = (timer, set())
        entry[1].add(connection)

    def discard(self, connection: SignedIn, expiration_ms: int) -> None:
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
        self._by_user: dict[str, set[SignedIn]] = {}
        self.expiry = ExpiryTimers()

    def add(self, connection: SignedIn) -> None:
        if connection.user_id is not None:
            self._by_user.setdefault(connection.user_id, set()).add(connection)

    def discard(self, connection: SignedIn, user_id: str | None) -> None:
        connections = self._by_user.get(user_id) if user_id is not None else None
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._by_user[user_id]  # type: ignore[arg-type]  # not None: its set was found

    def of_user(self, user_id: str) -> list[SignedIn]:
        return list(self._by_user.get(user_id, ()))

    def signed_in_by_token(self) -> list[SignedIn]:
        return [c for cs in self._by_user.values() for c in cs if c.token_id is not None]

    def sign_out_user(self, user_id: str) -> None:
        """The user was deleted (here or, in a cluster, on another instance)."""
        for connection in self.of_user(user_id):
            connection.sign_out()

    def sign_out_token(self, token_id: str) -> None:
        """The token was deleted (here or, in a cluster, on another instance)."""
        for connection in self.signed_in_by_token():
            if connection.token_id == token_id:
                connection.sign_out()
