"""`$getFrom` downloads: one-shot URLs a method hands out for a big result to be fetched over
HTTP (xod/server/app.py serves `/api/<token>`)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable

Stream = Callable[[], AsyncIterator[bytes]]


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
