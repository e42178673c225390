from __future__ import annotations

from xod.store import Store, ensure_admin


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
