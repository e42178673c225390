"""One-shot URLs a method hands out for a big result or argument to move over HTTP
(xod/server/app.py serves `/api/<token>`): `$getFrom` downloads (GET) and `$sendTo` uploads
(POST, the body streamed to a receiver)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xod.xapi.transfers import Body

# What a download yields: bytes, or a pool master's body to pass through (xod/server/downloads.py).
Stream = Callable[[], AsyncGenerator["bytes | Body", None]]
# Given the request body (chunks) and its announced length, consumes it; the call's result.
Receiver = Callable[[AsyncIterator[bytes], int | None], Awaitable[Any]]


class TooManyDownloads(Exception):
    """Every one-shot slot is taken by URLs not yet used."""


@dataclass(frozen=True)
class _Entry:
    expires: float
    owner: str | None
    content_type: str = "application/json"
    stream: Stream | None = None
    receiver: Receiver | None = None


class OneShotUrls:
    """`/api/<random token>` URLs served once, then forgotten (or after `ttl`).

    Each owner (a user) may hold `per_owner` pending URLs: a new one replaces the owner's
    oldest, never someone else's; when all `limit` are taken by others, registering fails.
    """

    def __init__(self, ttl: float = 60.0, limit: int = 1000, per_owner: int = 8) -> None:
        self.ttl = ttl
        self.limit = limit
        self.per_owner = per_owner
        self._entries: dict[str, _Entry] = {}

    def _add(self, entry: _Entry) -> str:
        now = time.monotonic()
        entries = self._entries
        for key in [k for k, old in entries.items() if old.expires < now]:
            del entries[key]
        owned = [k for k, old in entries.items() if old.owner == entry.owner]
        for key in owned[: max(0, len(owned) - self.per_owner + 1)]:
            del entries[key]
        if len(entries) >= self.limit:
            raise TooManyDownloads(f"{self.limit} transfers are pending: try again later")
        token = secrets.token_urlsafe(32)
        entries[token] = entry
        return f"/api/{token}"

    def register(
        self, stream: Stream, content_type: str = "application/json", owner: str | None = None
    ) -> str:
        """A `$getFrom` URL whose GET streams `stream()`."""
        return self._add(_Entry(time.monotonic() + self.ttl, owner, content_type, stream=stream))

    def register_upload(self, receiver: Receiver, owner: str | None = None) -> str:
        """A `$sendTo` URL whose POST body goes to `receiver`."""
        return self._add(_Entry(time.monotonic() + self.ttl, owner, receiver=receiver))

    def _take(self, token: str) -> _Entry | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        del self._entries[token]
        return None if entry.expires < time.monotonic() else entry

    def take(self, token: str) -> tuple[str, Stream] | None:
        entry = self._entries.get(token)
        if entry is None or entry.stream is None:
            return None
        taken = self._take(token)
        return None if taken is None or taken.stream is None else (taken.content_type, taken.stream)

    def take_upload(self, token: str) -> Receiver | None:
        entry = self._entries.get(token)
        if entry is None or entry.receiver is None:
            return None
        taken = self._take(token)
        return None if taken is None else taken.receiver
