from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from tests.store.conftest import cheap_hasher
from xod.store import (
    PERMISSIONS,
    DuplicateUser,
    NoSuchUser,
    Store,
    UserError,
    permission_allows,
)


def test_create_get_list_delete(store: Store) -> None:
    alice = store.users.create("alice@example.org", "pw-alice", permission="write")
    bob = store.users.create("bob", "pw-bob")
    assert store.users.get(alice.id) == alice
    assert store.users.get_by_email("bob") == bob
    assert bob.permission == "none"
    assert [u.email for u in store.users.list()] == ["alice@example.org", "bob"]
    assert store.users.count() == 2
    assert store.users.delete(bob.id) is True
    assert store.users.delete(bob.id) is False
    assert store.users.get(bob.id) is None


def test_password_is_stored_as_argon2id_hash_only(store: Store, tmp_path: Path) -> None:
    store.users.create("carol", "correct horse battery staple")
    stored = store.users.get_by_email("carol")
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert "correct horse" not in repr(stored)
    raw = (tmp_path / "state" / "xod.sqlite3").read_bytes()
    wal = (tmp_path / "state" / "xod.sqlite3-wal").read_bytes()
    assert b"correct horse" not in raw + wal


def test_public_properties(store: Store) -> None:
    user = store.users.create("dave", "pw", permission="admin", preferences={"lang": "fr"})
    assert user.public() == {
        "id": user.id,
        "email": "dave",
        "groups": [],
        "permission": "admin",
        "preferences": {"lang": "fr"},
    }


def test_duplicate_email_and_invalid_fields(store: Store) -> None:
    user = store.users.create("erin", "pw")
    with pytest.raises(DuplicateUser):
        store.users.create("erin", "other")
    other = store.users.create("frank", "pw")
    with pytest.raises(DuplicateUser):
        store.users.update(other.id, email="erin")
    with pytest.raises(UserError):
        store.users.create("gina", "pw", permission="root")
    with pytest.raises(UserError):
        store.users.update(user.id, permission="superuser")
    with pytest.raises(UserError):
        store.users.create("", "pw")
    with pytest.raises(NoSuchUser):
        store.users.update("no-such-id", permission="read")


def test_update_fields_and_password(store: Store) -> None:
    user = store.users.create("hank", "old-password")
    updated = store.users.update(
        user.id, email="hank@example.org", permission="read", preferences={"a": [1]}
    )
    assert store.users.get(user.id) == updated
    assert (updated.email, updated.permission, updated.preferences) == (
        "hank@example.org",
        "read",
        {"a": [1]},
    )
    store.users.update(user.id, password="new-password")
    assert store.users.verify_password("hank@example.org", "old-password") is None
    verified = store.users.verify_password("hank@example.org", "new-password")
    assert verified is not None and verified.id == user.id


def test_verify_password(store: Store) -> None:
    user = store.users.create("ivy", "s3cret")
    assert store.users.verify_password("ivy", "s3cret") == user
    assert store.users.verify_password("ivy", "S3cret") is None
    assert store.users.verify_password("ivy", "") is None
    assert store.users.verify_password("nobody", "s3cret") is None
    nopass = store.users.create("sso-user", None)
    assert nopass.password_hash is None
    assert store.users.verify_password("sso-user", "") is None
    assert store.users.verify_password("sso-user", "anything") is None


def test_outdated_hash_is_rehashed_on_sign_in(tmp_path: Path) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
    old = Store.open(tmp_path, weak)
    user = old.users.create("jack", "pw")
    old.close()
    stronger = Store.open(tmp_path, cheap_hasher())
    old_hash = stronger.users.get(user.id).password_hash
    assert "m=512" in (old_hash or "")
    verified = stronger.users.verify_password("jack", "pw")
    assert verified is not None and "m=1024" in (verified.password_hash or "")
    assert stronger.users.get(user.id).password_hash == verified.password_hash
    assert stronger.users.verify_password("jack", "pw") is not None
    stronger.close()


def test_permission_order() -> None:
    assert PERMISSIONS == ("none", "user", "read", "write", "admin")
    assert permission_allows("admin", "write") and permission_allows("write", "write")
    assert permission_allows("read", "none")
    # XO's `user` level ranks like `none` for method-level checks.
    assert permission_allows("user", "none") and permission_allows("none", "user")
    assert not permission_allows("user", "read")
    assert not permission_allows("read", "write") and not permission_allows("none", "read")


def test_deleting_a_user_deletes_their_tokens(store: Store) -> None:
    user = store.users.create("kim", "pw")
    new = store.tokens.create(user.id)
    store.users.delete(user.id)
    assert store.tokens.lookup(new.token) is None
