"""`xod.changes` notifications: a subscription and its frames (chunked, at most
`CHUNK_OBJECTS` objects each), the snapshot or resume frames its start shares with others of
the same scope (`StartFrames`), and the bounds on subscriptions. xod/server/fanout.py delivers
them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

from xod.api.errors import ApiError
from xod.api.subscriptions import Delta, Scope
from xod.cache.encoded import EncodedObjects
from xod.server.frames import ChangesTemplate, WireFormat, changes_message
from xod.server.peer import Peer

SUBSCRIPTION_ID_LENGTH = 16
# Objects per snapshot/resume/coalesced frame: a big snapshot never becomes one giant frame.
CHUNK_OBJECTS = 500
# A subscription costs a scope (a projected copy of what it selects, its filter run on every
# batch): a connection may hold only so many, and the daemon only so many distinct scopes.
MAX_SUBSCRIPTIONS_PER_CONNECTION = 32
MAX_SCOPES = 1000
TOO_MANY_SUBSCRIPTIONS_CODE = 429


def too_many_subscriptions(limit: int, what: str) -> ApiError:
    return ApiError(
        TOO_MANY_SUBSCRIPTIONS_CODE,
        f"too many subscriptions: at most {limit} {what}; unsubscribe first",
        {"code": "TOO_MANY_SUBSCRIPTIONS", "limit": limit},
    )


def _chunks(items: Iterator[tuple[str, Any]], size: int) -> Iterator[dict[str, Any]]:
    while True:
        chunk = dict(itertools.islice(items, size))
        if not chunk:
            return
        yield chunk


class Subscription:
    __slots__ = ("active", "id", "id_bytes", "last_sent", "peer", "scope")

    def __init__(self, subscription_id: str, scope: Scope, peer: Peer) -> None:
        self.id = subscription_id
        self.id_bytes = subscription_id.encode()
        self.scope = scope
        self.peer = peer
        self.last_sent = time.monotonic()
        self.active = False

    def frames(
        self, fmt: WireFormat, revision: int, enter: dict[str, Any], exit_ids: list[str]
    ) -> Iterator[bytes]:
        """This subscription's frames for a (possibly big) net change, chunked."""
        chunks = _chunks(iter(enter.items()), CHUNK_OBJECTS)
        first = next(chunks, {})
        yield fmt.frame(changes_message(self.id, revision, first, exit_ids))
        for chunk in chunks:
            yield fmt.frame(changes_message(self.id, revision, chunk, []))

    def coalesced_frames(
        self, fmt: WireFormat, items: dict[str, Any], revision: int
    ) -> list[bytes]:
        if not self.active:
            return []
        enter = {i: o for i, o in items.items() if o is not None}
        exit_ids = [i for i, o in items.items() if o is None]
        return list(self.frames(fmt, revision, enter, exit_ids))


class StartFrames:
    """A snapshot or resume, chunked, each chunk encoded on first demand and then shared: a
    big snapshot is neither one giant frame nor encoded all at once."""

    __slots__ = ("_chunks", "_encoded", "_exit", "_fmt", "_revision", "_templates")

    def __init__(self, fmt: WireFormat, delta: Delta, encoded: EncodedObjects | None) -> None:
        self._fmt = fmt
        self._encoded = encoded
        self._revision = delta.revision
        self._exit = delta.exit
        self._chunks = list(_chunks(iter(delta.enter.items()), CHUNK_OBJECTS)) or [{}]
        self._templates: list[ChangesTemplate | None] = [None] * len(self._chunks)

    def frames(self, id_bytes: bytes) -> Iterator[bytes]:
        for i, chunk in enumerate(self._chunks):
            template = self._templates[i]
            if template is None:
                template = self._templates[i] = ChangesTemplate(
                    self._fmt,
                    SUBSCRIPTION_ID_LENGTH,
                    self._revision,
                    chunk,
                    self._exit if i == 0 else [],
                    self._encoded,
                )
            yield template.frame(id_bytes)
