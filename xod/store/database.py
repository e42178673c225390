"""The state database: one SQLite file (mode 0600, WAL), schema versioned by PRAGMA user_version.

Queries are tiny (a user, a token, a handful of servers), so the API is synchronous; callers on
the event loop may call it directly. A lock makes it safe to call from worker threads as well.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DATABASE_NAME = "xod.sqlite3"

# Append-only: migration N brings the schema from user_version N to N + 1. Never edit a
# released entry; add a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        email         TEXT NOT NULL UNIQUE,
        password_hash TEXT,
        permission    TEXT NOT NULL CHECK (permission IN ('none', 'read', 'write', 'admin')),
        preferences   TEXT NOT NULL DEFAULT '{}',
        groups_json   TEXT NOT NULL DEFAULT '[]',
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        id          TEXT PRIMARY KEY,
        token_hash  TEXT NOT NULL UNIQUE,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        client_id   TEXT,
        description TEXT,
        created_at  INTEGER NOT NULL,
        expiration  INTEGER NOT NULL,
        last_uses   TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX tokens_by_user ON tokens(user_id);
    CREATE UNIQUE INDEX tokens_by_client ON tokens(user_id, client_id) WHERE client_id IS NOT NULL;
    CREATE INDEX tokens_by_expiration ON tokens(expiration);
    CREATE TABLE servers (
        id                 TEXT PRIMARY KEY,
        label              TEXT,
        host               TEXT NOT NULL UNIQUE,
        username           TEXT NOT NULL,
        password           TEXT NOT NULL,
        enabled            INTEGER NOT NULL DEFAULT 1,
        allow_unauthorized INTEGER NOT NULL DEFAULT 0,
        read_only          INTEGER NOT NULL DEFAULT 0,
        http_proxy         TEXT,
        error              TEXT,
        created_at         INTEGER NOT NULL
    );
    """,
    # 1 -> 2: cloud-init templates (xod/store/cloud_configs.py).
    """
    CREATE TABLE cloud_configs (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        template   TEXT NOT NULL,
        type       TEXT CHECK (type IS NULL OR type = 'network'),
        created_at INTEGER NOT NULL
    );
    """,
    # 2 -> 3: ACLs, groups (members in group_members: both sides of the membership at once, and
    # deleting a user or a group drops its memberships), resource sets (one normalized JSON
    # document each, xod/store/resource_sets.py), and XO's `user` level. SQLite cannot change a
    # CHECK constraint in place: users is rebuilt (with foreign keys off, see `_migrate`), and
    # its unused groups_json column goes, the memberships being a table now.
    """
    CREATE TABLE users_v3 (
        id            TEXT PRIMARY KEY,
        email         TEXT NOT NULL UNIQUE,
        password_hash TEXT,
        permission    TEXT NOT NULL
                      CHECK (permission IN ('none', 'user', 'read', 'write', 'admin')),
        preferences   TEXT NOT NULL DEFAULT '{}',
        created_at    INTEGER NOT NULL
    );
    INSERT INTO users_v3 (id, email, password_hash, permission, preferences, created_at)
        SELECT id, email, password_hash, permission, preferences, created_at FROM users;
    DROP TABLE users;
    ALTER TABLE users_v3 RENAME TO users;
    CREATE TABLE acls (
        id      TEXT NOT NULL,
        subject TEXT NOT NULL,
        object  TEXT NOT NULL,
        action  TEXT NOT NULL,
        PRIMARY KEY (subject, object, action)
    );
    CREATE INDEX acls_by_object ON acls(object);
    CREATE TABLE groups (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE group_members (
        group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, user_id)
    );
    CREATE INDEX group_members_by_user ON group_members(user_id);
    CREATE TABLE resource_sets (
        id       TEXT PRIMARY KEY,
        document TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The file was written by a newer xod; refuse rather than corrupt it."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _create_private_file(path: Path) -> None:
    # Created with 0600 from the start (no window where it is readable), then chmod in case it
    # pre-existed with wider bits. SQLite gives the -wal/-shm files the database file's mode.
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class Database:
    """A connection to the state database, migrated to the current schema."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        _create_private_file(path)
        self._connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=5.0
        )
        self._connection.row_factory = sqlite3.Row
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        self._connection.execute("PRAGMA foreign_keys=ON")

    @classmethod
    def open(cls, state_dir: str | os.PathLike[str]) -> Database:
        directory = Path(state_dir)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(directory / DATABASE_NAME)

    @property
    def schema_version(self) -> int:
        version: int = self._connection.execute("PRAGMA user_version").fetchone()[0]
        return version

    def _migrate(self) -> None:
        # Foreign keys stay off while migrating (they cannot be switched inside a transaction):
        # a table rebuild drops the old table, which would otherwise cascade to its dependants
        # (users → tokens). The references are checked before the commit instead.
        with self.transaction() as connection:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"{self.path} has schema version {version}, this xod knows {SCHEMA_VERSION}"
                )
            if version == SCHEMA_VERSION:
                return
            for migration in MIGRATIONS[version:]:
                for statement in migration.split(";"):
                    if statement.strip():
                        connection.execute(statement)
            if connection.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise RuntimeError(f"{self.path}: a migration left dangling references")
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error), serialized across threads."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> int:
        """Run one statement in its own transaction; return the number of changed rows."""
        with self.transaction() as connection:
            return connection.execute(sql, params).rowcount

    def close(self) -> None:
        with self._lock:
            self._connection.close()
