from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.store.conftest import cheap_hasher
from xod.store import Database, Store, TokenError, TokenStore
from xod.store.database import now_ms
from xod.store.tokens import DAY_MS, DEFAULT_TOKEN_VALIDITY_MS, MINUTE_MS


class Clock:
    def __init__(self) -> None:
        self.now = 1_757_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def setup(tmp_path: Path, clock: Clock):
    database = Database.open(tmp_path)
    store = Store(database, cheap_hasher())
    tokens = TokenStore(database, clock_ms=clock)
    alice = store.users.create("alice", "pw")
    bob = store.users.create("bob", "pw")
    yield tokens, alice, bob, tmp_path
    database.close()


def test_create_and_lookup(setup, clock: Clock) -> None:
    tokens, alice, _, _ = setup
    new = tokens.create(alice.id, description="xo-cli")
    assert len(new.token) == 43  # base64url of 32 random bytes, like XO
    assert new.token not in repr(new)
    record = tokens.lookup(new.token)
    assert record == new.record
    assert record.user_id == alice.id and record.description == "xo-cli"
    assert record.created_at == clock.now
    assert record.expiration == clock.now + DEFAULT_TOKEN_VALIDITY_MS
    assert tokens.lookup("not-a-token") is None
    assert tokens.lookup(new.token[:-1]) is None


def test_only_the_hash_is_stored(setup) -> None:
    tokens, alice, _, tmp_path = setup
    new = tokens.create(alice.id)
    files = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert new.token.encode() not in files
    assert hashlib.sha256(new.token.encode()).hexdigest().encode() in files


def test_expired_tokens_are_rejected_and_purged(setup, clock: Clock) -> None:
    tokens, alice, _, _ = setup
    short = tokens.create(alice.id, expires_in_ms=MINUTE_MS)
    long = tokens.create(alice.id, expires_in_ms=DAY_MS)
    clock.now += MINUTE_MS - 1
    assert tokens.lookup(short.token) is not None
    clock.now += 1
    assert tokens.lookup(short.token) is None
    assert [r.id for r in tokens.list_for_user(alice.id)] == [long.record.id]
    clock.now += DAY_MS
    assert tokens.purge_expired() == 1
    assert tokens.list_all() == []


def test_validity_bounds(setup) -> None:
    tokens, alice, _, _ = setup
    with pytest.raises(TokenError):
        tokens.create(alice.id, expires_in_ms=MINUTE_MS - 1)
    with pytest.raises(TokenError):
        tokens.create(alice.id, expires_in_ms=tokens.max_validity_ms + 1)
    assert tokens.create(alice.id, expires_in_ms=tokens.max_validity_ms)


def test_same_client_id_replaces_its_token(setup, clock: Clock) -> None:
    tokens, alice, bob, _ = setup
    first = tokens.create(alice.id, client_id="cli-1", description="v1")
    clock.now += 1000
    second = tokens.create(alice.id, client_id="cli-1", description="v2")
    assert second.record.id == first.record.id
    assert second.token != first.token
    assert tokens.lookup(first.token) is None  # the old value no longer signs in
    refreshed = tokens.lookup(second.token)
    assert refreshed.description == "v2" and refreshed.client_id == "cli-1"
    assert refreshed.created_at == first.record.created_at
    assert refreshed.expiration == clock.now + DEFAULT_TOKEN_VALIDITY_MS
    other_client = tokens.create(alice.id, client_id="cli-2")
    bobs = tokens.create(bob.id, client_id="cli-1")  # same client id, other user: distinct
    assert len({second.record.id, other_client.record.id, bobs.record.id}) == 3
    assert len(tokens.list_for_user(alice.id)) == 2
    assert refreshed.public()["client"] == {"id": "cli-1"}


def test_expired_client_token_is_replaced_by_a_new_record(setup, clock: Clock) -> None:
    tokens, alice, _, _ = setup
    first = tokens.create(alice.id, client_id="c", expires_in_ms=MINUTE_MS)
    clock.now += MINUTE_MS
    second = tokens.create(alice.id, client_id="c")
    assert second.record.id != first.record.id
    assert tokens.lookup(second.token) is not None


def test_delete_by_id_or_value_and_delete_own(setup) -> None:
    tokens, alice, bob, _ = setup
    a1 = tokens.create(alice.id)
    a2 = tokens.create(alice.id)
    b1 = tokens.create(bob.id)
    assert tokens.delete([b1.record.id], user_id=alice.id) == 0  # deleteOwn: not hers
    assert tokens.lookup(b1.token) is not None
    assert tokens.delete([a1.token], user_id=alice.id) == 1  # by token value
    assert tokens.delete([b1.record.id]) == 1  # admin: any user's
    assert tokens.delete([]) == 0
    assert [r.id for r in tokens.list_all()] == [a2.record.id]


def test_delete_matching_pattern(setup) -> None:
    tokens, alice, bob, _ = setup
    tokens.create(alice.id, description="xo-cli")
    keep = tokens.create(alice.id, description="web")
    tokens.create(bob.id, description="xo-cli")
    assert tokens.delete_matching(lambda r: r["description"] == "xo-cli", user_id=alice.id) == 1
    assert [r.id for r in tokens.list_for_user(alice.id)] == [keep.record.id]
    assert tokens.delete_matching(lambda r: r["description"] == "xo-cli") == 1
    assert tokens.list_for_user(bob.id) == []


def test_set_description_and_last_uses(setup, clock: Clock) -> None:
    tokens, alice, _, _ = setup
    new = tokens.create(alice.id)
    assert tokens.set_description(new.record.id, "renamed")
    assert tokens.get(new.record.id).description == "renamed"
    for i in range(12):
        clock.now += 1
        tokens.record_use(new.record.id, f"10.0.0.{i}")
    clock.now += 1
    tokens.record_use(new.record.id, "10.0.0.5")
    uses = tokens.get(new.record.id).last_uses
    assert len(uses) == 10
    assert "10.0.0.0" not in uses and "10.0.0.1" not in uses
    assert uses["10.0.0.5"] == {"timestamp": clock.now}
    public = tokens.get(new.record.id).public()
    assert set(public) == {"id", "user_id", "created_at", "expiration", "description", "last_uses"}


def test_opening_the_store_purges_tokens_that_expired_meanwhile(tmp_path: Path) -> None:
    # Tokens nobody presents again are never met by a lookup: without a sweep they would stay.
    clock = Clock()
    clock.now = now_ms() - 2 * MINUTE_MS
    database = Database.open(tmp_path)
    users = Store(database, cheap_hasher()).users
    tokens = TokenStore(database, clock_ms=clock)
    alice = users.create("alice", "pw")
    tokens.create(alice.id, expires_in_ms=MINUTE_MS)  # expired a minute ago
    live = tokens.create(alice.id, expires_in_ms=DAY_MS)
    database.close()

    reopened = Store.open(tmp_path, cheap_hasher())
    try:
        rows = reopened.database.query("SELECT id FROM tokens")
        assert [row["id"] for row in rows] == [live.record.id]
    finally:
        reopened.close()
