"""Authentication tokens: shown once at creation, stored only as a SHA-256 hash.

A token is 32 random bytes (43 chars of base64url, like XO's `generateToken`), so a fast hash
is enough: there is nothing to brute-force. Each record also has a public `id` (not secret) that
lists and deletions use; deleting by the token value itself works too.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from xod.store.database import Database, now_ms
from xod.store.replication_errors import SharedStateUnavailable, WriteConflict

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
DEFAULT_TOKEN_VALIDITY_MS = 30 * DAY_MS  # XO's defaultTokenValidity
MAX_TOKEN_VALIDITY_MS = int(0.5 * 365.25 * DAY_MS)  # XO's maxTokenValidity, `ms("0.5 year")`
MIN_TOKEN_VALIDITY_MS = MINUTE_MS
LAST_USES_KEPT = 10


class TokenError(ValueError):
    pass


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    user_id: str
    client_id: str | None
    description: str | None
    created_at: int  # ms since epoch
    expiration: int  # ms since epoch
    last_uses: dict[str, dict[str, int]] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """XO's token record shape (src/models/token.mjs), without any secret."""
        record: dict[str, Any] = {
            "id": self.id,
            "user_id": self.user_id,
            "created_at": self.created_at,
            "expiration": self.expiration,
            "description": self.description,
            "last_uses": self.last_uses,
        }
        if self.client_id is not None:
            record["client"] = {"id": self.client_id}
        return record


@dataclass(frozen=True, slots=True)
class NewToken:
    """The result of a creation: the only time the token value exists outside the client."""

    token: str = field(repr=False)
    record: TokenRecord


def _row_to_record(row: Any) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        user_id=row["user_id"],
        client_id=row["client_id"],
        description=row["description"],
        created_at=row["created_at"],
        expiration=row["expiration"],
        last_uses=orjson.loads(row["last_uses"]),
    )


class TokenStore:
    def __init__(
        self,
        database: Database,
        *,
        default_validity_ms: int = DEFAULT_TOKEN_VALIDITY_MS,
        max_validity_ms: int = MAX_TOKEN_VALIDITY_MS,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._db = database
        self.default_validity_ms = default_validity_ms
        self.max_validity_ms = max_validity_ms
        self._clock_ms = clock_ms

    def create(
        self,
        user_id: str,
        *,
        description: str | None = None,
        client_id: str | None = None,
        expires_in_ms: int | None = None,
    ) -> NewToken:
        """Create a token; a `client_id` that already has a live token of this user replaces it.

        XO returns the existing token for a known client id; we cannot (only its hash is kept),
        so the client gets a fresh value under the same record id and the old value stops
        working — xo-cli and xo-web store whatever token.create returns, so they are unaffected.
        """
        validity = self.default_validity_ms if expires_in_ms is None else expires_in_ms
        if not MIN_TOKEN_VALIDITY_MS <= validity <= self.max_validity_ms:
            raise TokenError(
                f"expiresIn must be between {MIN_TOKEN_VALIDITY_MS} and {self.max_validity_ms} ms"
            )
        token = generate_token()
        now = self._clock_ms()
        with self._db.transaction() as connection:
            connection.execute("DELETE FROM tokens WHERE expiration <= ?", (now,))
            existing = None
            if client_id is not None:
                existing = connection.execute(
                    "SELECT * FROM tokens WHERE user_id = ? AND client_id = ?",
                    (user_id, client_id),
                ).fetchone()
            if existing is not None:
                record = TokenRecord(
                    id=existing["id"],
                    user_id=user_id,
                    client_id=client_id,
                    description=description,
                    created_at=existing["created_at"],
                    expiration=now + validity,
                    last_uses=orjson.loads(existing["last_uses"]),
                )
                connection.execute(
                    "UPDATE tokens SET token_hash = ?, description = ?, expiration = ?"
                    " WHERE id = ?",
                    (hash_token(token), description, record.expiration, record.id),
                )
            else:
                record = TokenRecord(
                    id=secrets.token_hex(16),
                    user_id=user_id,
                    client_id=client_id,
                    description=description,
                    created_at=now,
                    expiration=now + validity,
                )
                connection.execute(
                    "INSERT INTO tokens (id, token_hash, user_id, client_id, description,"
                    " created_at, expiration) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.id,
                        hash_token(token),
                        user_id,
                        client_id,
                        description,
                        record.created_at,
                        record.expiration,
                    ),
                )
        return NewToken(token=token, record=record)

    def lookup(self, token: str) -> TokenRecord | None:
        """The live record for a token value, or None (an expired one is deleted on the way)."""
        rows = self._db.query("SELECT * FROM tokens WHERE token_hash = ?", (hash_token(token),))
        if not rows:
            return None
        record = _row_to_record(rows[0])
        if record.expiration <= self._clock_ms():
            self._db.execute("DELETE FROM tokens WHERE id = ?", (record.id,))
            return None
        return record

    def record_use(self, record_id: str, address: str) -> None:
        """Remember that the token was used from `address` (the 10 most recent addresses).

        Best effort: in a cluster, a use recorded at the same time elsewhere (WriteConflict) or
        NATS out of reach does not fail the sign-in that is being recorded.
        """
        now = self._clock_ms()
        with (
            contextlib.suppress(WriteConflict, SharedStateUnavailable),
            self._db.transaction() as connection,
        ):
            row = connection.execute(
                "SELECT last_uses FROM tokens WHERE id = ?", (record_id,)
            ).fetchone()
            if row is None:
                return
            uses: dict[str, dict[str, int]] = orjson.loads(row["last_uses"])
            uses.pop(address, None)
            uses[address] = {"timestamp": now}
            if len(uses) > LAST_USES_KEPT:
                newest = sorted(uses.items(), key=lambda item: item[1]["timestamp"])
                uses = dict(newest[-LAST_USES_KEPT:])
            connection.execute(
                "UPDATE tokens SET last_uses = ? WHERE id = ?", (orjson.dumps(uses), record_id)
            )

    def get(self, record_id: str) -> TokenRecord | None:
        rows = self._db.query(
            "SELECT * FROM tokens WHERE id = ? AND expiration > ?", (record_id, self._clock_ms())
        )
        return _row_to_record(rows[0]) if rows else None

    def list_for_user(self, user_id: str) -> list[TokenRecord]:
        rows = self._db.query(
            "SELECT * FROM tokens WHERE user_id = ? AND expiration > ? ORDER BY rowid",
            (user_id, self._clock_ms()),
        )
        return [_row_to_record(row) for row in rows]

    def list_all(self) -> list[TokenRecord]:
        rows = self._db.query(
            "SELECT * FROM tokens WHERE expiration > ? ORDER BY rowid",
            (self._clock_ms(),),
        )
        return [_row_to_record(row) for row in rows]

    def set_description(self, record_id: str, description: str | None) -> bool:
        return (
            self._db.execute(
                "UPDATE tokens SET description = ? WHERE id = ?", (description, record_id)
            )
            > 0
        )

    def delete(self, ids: Iterable[str], *, user_id: str | None = None) -> int:
        """Delete tokens named by record id or by token value (any user's, or only `user_id`'s).

        `token.delete` is the admin form (user_id None), `token.deleteOwn` passes the caller.
        """
        keys = [key for identifier in ids for key in (identifier, hash_token(identifier))]
        if not keys:
            return 0
        placeholders = ",".join("?" * (len(keys) // 2))
        sql = f"DELETE FROM tokens WHERE (id IN ({placeholders}) OR token_hash IN ({placeholders}))"
        params: list[str] = keys[0::2] + keys[1::2]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        return self._db.execute(sql, tuple(params))

    def delete_matching(
        self, predicate: Callable[[dict[str, Any]], bool], *, user_id: str | None = None
    ) -> int:
        """Delete the live tokens whose public record matches (token.delete's `pattern`)."""
        records = self.list_all() if user_id is None else self.list_for_user(user_id)
        return self.delete([r.id for r in records if predicate(r.public())], user_id=user_id)

    def purge_expired(self) -> int:
        """Delete every expired token (each `create` does too; `Store.open` at start)."""
        return self._db.execute("DELETE FROM tokens WHERE expiration <= ?", (self._clock_ms(),))
