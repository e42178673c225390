from __future__ import annotations

import pytest

from xod.store import DuplicateServer, NoSuchServer, Store


def test_add_get_list_remove(store: Store) -> None:
    first = store.servers.add("10.0.0.2", "root", "secret", label="lab")
    second = store.servers.add("https://pool2.example", "admin", "pw2", allow_unauthorized=True)
    assert store.servers.get(first.id) == first
    assert first.enabled and not first.read_only and not first.allow_unauthorized
    assert second.allow_unauthorized
    assert [s.id for s in store.servers.list()] == [first.id, second.id]
    assert store.servers.remove(first.id) is True
    assert store.servers.remove(first.id) is False
    assert store.servers.get(first.id) is None


def test_password_is_kept_for_xapi_but_never_shown(store: Store) -> None:
    server = store.servers.add("10.0.0.2", "root", "hunter2")
    assert store.servers.get(server.id).password == "hunter2"
    assert "hunter2" not in repr(server)
    public = server.public()
    assert "password" not in public and "hunter2" not in str(public)


def test_duplicate_host(store: Store) -> None:
    store.servers.add("10.0.0.2", "root", "a")
    other = store.servers.add("10.0.0.3", "root", "b")
    with pytest.raises(DuplicateServer):
        store.servers.add("10.0.0.2", "root", "c")
    with pytest.raises(DuplicateServer):
        store.servers.update(other.id, host="10.0.0.2")


def test_update_enable_error(store: Store) -> None:
    server = store.servers.add("10.0.0.2", "root", "a")
    updated = store.servers.update(
        server.id, label="prod", read_only=True, http_proxy="http://proxy:3128", password="b"
    )
    assert store.servers.get(server.id) == updated
    assert (updated.label, updated.read_only, updated.http_proxy, updated.password) == (
        "prod",
        True,
        "http://proxy:3128",
        "b",
    )
    assert store.servers.set_enabled(server.id, False).enabled is False
    assert store.servers.get(server.id).enabled is False
    error = {"code": "SESSION_AUTHENTICATION_FAILED", "params": ["root", "bad"]}
    store.servers.update(server.id, error=error)
    assert store.servers.get(server.id).error == error
    store.servers.update(server.id, error=None)
    assert store.servers.get(server.id).error is None
    store.servers.update(server.id, label=None)
    assert store.servers.get(server.id).label is None
    with pytest.raises(NoSuchServer):
        store.servers.update("missing", label="x")
    with pytest.raises(TypeError):
        store.servers.update(server.id, status="connected")


def test_public_record_shape(store: Store) -> None:
    added = store.servers.add("10.0.0.2", "root", "a")
    store.servers.update(added.id, error={"message": "connect ECONNREFUSED"})
    server = store.servers.get(added.id)
    pool = {"poolId": "p-uuid", "master": "h-uuid", "poolNameLabel": "Lab pool"}
    assert server.public("connected", pool) == {
        "id": server.id,
        "host": "10.0.0.2",
        "label": "Lab pool",  # label defaults to the pool's name
        "username": "root",
        "enabled": True,
        "readOnly": False,
        "allowUnauthorized": False,
        "status": "connected",
        "error": {"message": "connect ECONNREFUSED"},
        "poolId": "p-uuid",
        "master": "h-uuid",
        "poolNameLabel": "Lab pool",
    }
    assert server.public()["status"] == "disconnected"
    with pytest.raises(ValueError):
        server.public("online")
