from __future__ import annotations

import stat
from pathlib import Path

import pytest

from xod.store import Store, ensure_admin
from xod.store.first_start import PASSWORD_FILE_NAME, write_password_file


def test_first_start_with_given_credentials(store: Store) -> None:
    created = ensure_admin(store.users, "root@example.org", "chosen-password")
    assert created is not None and created.generated_password is None
    assert created.user.permission == "admin"
    assert store.users.verify_password("root@example.org", "chosen-password") is not None
    assert ensure_admin(store.users, "other@example.org", "x") is None
    assert store.users.count() == 1


def test_first_start_generates_a_password_once(store: Store) -> None:
    created = ensure_admin(store.users)
    assert created is not None
    password = created.generated_password
    assert password and len(password) >= 20
    assert password not in repr(created)
    assert created.user.email == "admin@admin.net"
    assert store.users.verify_password("admin@admin.net", password) is not None
    assert ensure_admin(store.users) is None


def test_existing_users_prevent_creation(store: Store) -> None:
    store.users.create("someone", "pw", permission="read")
    assert ensure_admin(store.users) is None
    assert [u.permission for u in store.users.list()] == ["read"]


def test_generated_password_file_is_private(tmp_path: Path) -> None:
    stale = tmp_path / PASSWORD_FILE_NAME
    stale.write_text("an older run's password, longer than the new one\n")
    stale.chmod(0o644)
    path = write_password_file(tmp_path, "s3cret-generated")
    assert path == stale
    assert path.read_text() == "s3cret-generated\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_password_file_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    (tmp_path / PASSWORD_FILE_NAME).symlink_to(target)
    with pytest.raises(OSError):
        write_password_file(tmp_path, "s3cret-generated")
    assert target.read_text() == "untouched\n"
