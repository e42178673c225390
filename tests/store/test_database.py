from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from xod.store import DATABASE_NAME, SCHEMA_VERSION, Database, SchemaTooNew, Store
from xod.store.database import MIGRATIONS


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_database_and_wal_files_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a permissive umask must not leak into the file mode
    try:
        store = Store.open(tmp_path / "state")
        store.servers.add("10.0.0.2", "root", "secret")
    finally:
        os.umask(old_umask)
    state = tmp_path / "state"
    assert mode(state) == 0o700
    assert mode(state / DATABASE_NAME) == 0o600
    for suffix in ("-wal", "-shm"):
        sidecar = state / (DATABASE_NAME + suffix)
        assert sidecar.exists()
        assert mode(sidecar) == 0o600
    store.close()


def test_existing_file_with_wide_mode_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / DATABASE_NAME
    path.touch()
    os.chmod(path, 0o644)
    Database(path).close()
    assert mode(path) == 0o600


def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    database = Database.open(tmp_path)
    assert database.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert database.query("PRAGMA journal_mode")[0][0] == "wal"
    database.close()
    # Reopening does not re-run migrations (tables would already exist).
    again = Database.open(tmp_path)
    assert again.schema_version == SCHEMA_VERSION
    again.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Database.open(tmp_path).close()
    connection = sqlite3.connect(tmp_path / DATABASE_NAME)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(SchemaTooNew):
        Database.open(tmp_path)


def test_data_survives_reopening(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    server = store.servers.add("pool.example", "root", "pw", label="lab")
    store.close()
    reopened = Store.open(tmp_path)
    assert reopened.servers.get(server.id) == server
    reopened.close()


def test_failed_transaction_rolls_back(store: Store) -> None:
    with pytest.raises(RuntimeError), store.database.transaction() as connection:
        connection.execute(
            "INSERT INTO servers (id, host, username, password, created_at)"
            " VALUES ('x', 'h', 'u', 'p', 0)"
        )
        raise RuntimeError("boom")
    assert store.servers.list() == []
