"""Migration 3 (ACLs, groups, resource sets, the `user` level) on a file written by a version-2
xod: its users, their tokens and the other tables come through; the new rules hold after."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from xod.store import DATABASE_NAME, SCHEMA_VERSION, Store
from xod.store.database import MIGRATIONS


def version_2_file(directory: Path) -> Path:
    """A state file exactly as xod with schema version 2 left it, with a user and a token."""
    directory.mkdir(mode=0o700)
    path = directory / DATABASE_NAME
    connection = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:2]:
        connection.executescript(migration)
    connection.execute("PRAGMA user_version = 2")
    connection.execute(
        "INSERT INTO users (id, email, password_hash, permission, preferences, groups_json,"
        " created_at) VALUES ('u1', 'ops@example.com', NULL, 'write', '{\"lang\":\"fr\"}',"
        " '[]', 1)"
    )
    connection.execute(
        "INSERT INTO tokens (id, token_hash, user_id, created_at, expiration)"
        " VALUES ('t1', 'h1', 'u1', 1, 99999999999999)"
    )
    connection.execute(
        "INSERT INTO cloud_configs (id, name, template, created_at) VALUES ('c1', 'n', 't', 1)"
    )
    connection.close()
    return path


def test_a_version_2_file_is_migrated_keeping_its_data(tmp_path: Path) -> None:
    version_2_file(tmp_path / "state")
    store = Store.open(tmp_path / "state")
    try:
        assert SCHEMA_VERSION == 3
        assert store.database.schema_version == 3
        user = store.users.get("u1")
        assert user is not None
        assert (user.email, user.permission, user.preferences, user.groups) == (
            "ops@example.com",
            "write",
            {"lang": "fr"},
            [],
        )
        # The users table was rebuilt: its tokens survived it (no cascade while migrating).
        assert [token.id for token in store.tokens.list_for_user("u1")] == ["t1"]
        assert [config.id for config in store.cloud_configs.list()] == ["c1"]
        # The new tables work, and XO's `user` level is accepted.
        group = store.groups.create("ops")
        store.groups.add_user(group.id, "u1")
        store.acls.add("u1", "vm-1", "viewer")
        store.users.update("u1", permission="user")
        user = store.users.get("u1")
        assert user is not None and (user.permission, user.groups) == ("user", [group.id])
    finally:
        store.close()


def test_foreign_keys_are_on_again_after_the_migration(tmp_path: Path) -> None:
    version_2_file(tmp_path / "state")
    store = Store.open(tmp_path / "state")
    try:
        assert store.database.query("PRAGMA foreign_keys")[0][0] == 1
        group = store.groups.create("ops")
        store.groups.add_user(group.id, "u1")
        assert store.users.delete("u1")
        # Deleting the user cascaded to its token and its membership.
        assert store.tokens.list_for_user("u1") == []
        assert store.groups.get(group.id) == group
    finally:
        store.close()


def test_the_permission_check_still_refuses_unknown_levels(tmp_path: Path) -> None:
    version_2_file(tmp_path / "state")
    store = Store.open(tmp_path / "state")
    try:
        with pytest.raises(sqlite3.IntegrityError):
            store.database.execute("UPDATE users SET permission = 'root' WHERE id = 'u1'")
    finally:
        store.close()


def test_a_migration_that_would_leave_dangling_rows_changes_nothing(tmp_path: Path) -> None:
    path = version_2_file(tmp_path / "state")
    connection = sqlite3.connect(path, isolation_level=None)  # foreign keys off: as a bug would
    connection.execute(
        "INSERT INTO tokens (id, token_hash, user_id, created_at, expiration)"
        " VALUES ('t2', 'h2', 'nobody', 1, 99999999999999)"
    )
    connection.close()
    with pytest.raises(RuntimeError, match="dangling references"):
        Store.open(tmp_path / "state")
    # Rolled back as a whole: still a version-2 file, its users table as it was.
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == 2
    columns = [row[1] for row in connection.execute("PRAGMA table_info(users)")]
    assert "groups_json" in columns
    assert (
        connection.execute("SELECT name FROM sqlite_master WHERE name = 'acls'").fetchone() is None
    )
    connection.close()
