"""Registered XAPI servers (pool masters xod connects to).

The XAPI password must be replayed to log in, so it is stored as given; the database file is
0600. It never leaves this module's records through `public()` or `repr()`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from xod.store.database import Database, now_ms

SERVER_STATUSES = ("connected", "connecting", "disconnected")


class DuplicateServer(ValueError):
    """A server with this host is already registered (XO: code 16 objectAlreadyExists)."""


class NoSuchServer(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class ServerRecord:
    id: str
    host: str
    username: str
    password: str = field(repr=False)
    label: str | None = None
    enabled: bool = True
    allow_unauthorized: bool = False
    read_only: bool = False
    http_proxy: str | None = None
    error: Any = None  # last connection error, serialized (JSON value), or None
    created_at: int = 0

    def public(
        self, status: str = "disconnected", pool: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The server.getAll record, XO's shape: no password; runtime facts passed in.

        `pool` may carry poolId, master, poolNameLabel, poolNameDescription,
        poolMembersAddresses from the live connection; `label` defaults to poolNameLabel.
        """
        if status not in SERVER_STATUSES:
            raise ValueError(f"invalid status {status!r}")
        pool = pool or {}
        record: dict[str, Any] = {
            "id": self.id,
            "host": self.host,
            "label": self.label if self.label is not None else pool.get("poolNameLabel"),
            "username": self.username,
            "enabled": self.enabled,
            "readOnly": self.read_only,
            "allowUnauthorized": self.allow_unauthorized,
            "status": status,
        }
        if self.http_proxy is not None:
            record["httpProxy"] = self.http_proxy
        if self.error is not None:
            record["error"] = self.error
        record.update({key: value for key, value in pool.items() if value is not None})
        return record


_COLUMNS = {
    "label": "label",
    "host": "host",
    "username": "username",
    "password": "password",
    "enabled": "enabled",
    "allow_unauthorized": "allow_unauthorized",
    "read_only": "read_only",
    "http_proxy": "http_proxy",
    "error": "error",
}


def _row_to_server(row: Any) -> ServerRecord:
    return ServerRecord(
        id=row["id"],
        host=row["host"],
        username=row["username"],
        password=row["password"],
        label=row["label"],
        enabled=bool(row["enabled"]),
        allow_unauthorized=bool(row["allow_unauthorized"]),
        read_only=bool(row["read_only"]),
        http_proxy=row["http_proxy"],
        error=None if row["error"] is None else orjson.loads(row["error"]),
        created_at=row["created_at"],
    )


def _column_value(name: str, value: Any) -> Any:
    if name == "error":
        return None if value is None else orjson.dumps(value)
    if name in ("enabled", "allow_unauthorized", "read_only"):
        return int(bool(value))
    return value


class ServerStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(
        self,
        host: str,
        username: str,
        password: str,
        *,
        label: str | None = None,
        enabled: bool = True,
        allow_unauthorized: bool = False,
        read_only: bool = False,
        http_proxy: str | None = None,
    ) -> ServerRecord:
        if not host:
            raise ValueError("host must not be empty")
        server = ServerRecord(
            id=str(uuid.uuid4()),
            host=host,
            username=username,
            password=password,
            label=label,
            enabled=enabled,
            allow_unauthorized=allow_unauthorized,
            read_only=read_only,
            http_proxy=http_proxy,
            created_at=now_ms(),
        )
        with self._db.transaction() as connection:
            if connection.execute("SELECT 1 FROM servers WHERE host = ?", (host,)).fetchone():
                raise DuplicateServer(f"a server with host {host!r} is already registered")
            connection.execute(
                "INSERT INTO servers (id, label, host, username, password, enabled,"
                " allow_unauthorized, read_only, http_proxy, error, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    server.id,
                    label,
                    host,
                    username,
                    password,
                    int(enabled),
                    int(allow_unauthorized),
                    int(read_only),
                    http_proxy,
                    server.created_at,
                ),
            )
        return server

    def get(self, server_id: str) -> ServerRecord | None:
        rows = self._db.query("SELECT * FROM servers WHERE id = ?", (server_id,))
        return _row_to_server(rows[0]) if rows else None

    def list(self) -> list[ServerRecord]:
        rows = self._db.query("SELECT * FROM servers ORDER BY rowid")
        return [_row_to_server(row) for row in rows]

    def update(self, server_id: str, **changes: Any) -> ServerRecord:
        """Set some of: label, host, username, password, enabled, allow_unauthorized,
        read_only, http_proxy, error. Unknown names are a TypeError."""
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise TypeError(f"unknown server fields: {', '.join(sorted(unknown))}")
        with self._db.transaction() as connection:
            row = connection.execute("SELECT * FROM servers WHERE id = ?", (server_id,)).fetchone()
            if row is None:
                raise NoSuchServer(server_id)
            host = changes.get("host")
            if (
                host is not None
                and connection.execute(
                    "SELECT 1 FROM servers WHERE host = ? AND id != ?", (host, server_id)
                ).fetchone()
            ):
                raise DuplicateServer(f"a server with host {host!r} is already registered")
            if changes:
                assignments = ", ".join(f"{_COLUMNS[name]} = ?" for name in changes)
                connection.execute(
                    f"UPDATE servers SET {assignments} WHERE id = ?",
                    (*(_column_value(n, v) for n, v in changes.items()), server_id),
                )
        return replace(_row_to_server(row), **changes)

    def set_enabled(self, server_id: str, enabled: bool) -> ServerRecord:
        return self.update(server_id, enabled=enabled)

    def remove(self, server_id: str) -> bool:
        return self._db.execute("DELETE FROM servers WHERE id = ?", (server_id,)) > 0
