"""The store of two cluster members (xod/cluster/shared_state.py, xod/store/replicated.py)
against a real nats-server: claims of unique columns, writes based on a stale copy, cascades,
and NATS going away and coming back."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.api.harness import cheap_hasher
from tests.cluster.nats_server import NatsServer
from xod.cluster.shared_state import SharedState
from xod.store import DuplicateServer, DuplicateUser, Store
from xod.store.bucket_format import claim_key, encode_claim, row_key
from xod.store.replicated import CLAIM_GRACE_MS
from xod.store.replication_errors import SharedStateUnavailable, WriteConflict

REPLICATION_WAIT = 15.0  # seconds a change may take to reach the other member (loaded CI)


@pytest.fixture
def nats_server(tmp_path: Path):
    with NatsServer(tmp_path / "nats") as server:
        yield server


@pytest.fixture
async def members(
    tmp_path: Path, nats_server: NatsServer
) -> AsyncIterator[tuple[SharedState, Store, SharedState, Store]]:
    a = SharedState([nats_server.url], "a", timeout=2.0)
    b = SharedState([nats_server.url], "b", timeout=2.0)
    store_a = await a.open_store(tmp_path / "a", cheap_hasher())
    store_b = await b.open_store(tmp_path / "b", cheap_hasher())
    try:
        yield a, store_a, b, store_b
    finally:
        for shared, store in ((a, store_a), (b, store_b)):
            store.close()
            await shared.close()


async def until(what: str, condition: Callable[[], object]) -> None:
    async with asyncio.timeout(REPLICATION_WAIT):
        while not condition():
            await asyncio.sleep(0.02)
    assert condition(), what


async def test_a_host_is_registered_once_and_a_claim_left_behind_is_taken_over(members) -> None:
    a, store_a, _b, store_b = members
    results = await asyncio.gather(
        asyncio.to_thread(store_a.servers.add, "10.0.0.1", "root", "pw-a"),
        asyncio.to_thread(store_b.servers.add, "10.0.0.1", "root", "pw-b"),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["DuplicateServer", "ServerRecord"]
    await until(
        "the server on both",
        lambda: len(store_a.servers.list()) == 1 == len(store_b.servers.list()),
    )
    [server] = store_b.servers.list()
    with pytest.raises(DuplicateServer):
        store_b.servers.add("10.0.0.1", "root", "again")

    # Renamed: the old host is free again, the new one taken.
    store_b.servers.update(server.id, host="10.0.0.2")
    await until("the rename on a", lambda: store_a.servers.get(server.id).host == "10.0.0.2")
    store_a.servers.add("10.0.0.1", "root", "pw")
    with pytest.raises(DuplicateServer):
        store_a.servers.add("10.0.0.2", "root", "pw")

    # A member that died between claiming a host and writing its row left the claim behind.
    left_behind = time.time_ns() // 1_000_000 - CLAIM_GRACE_MS - 1000
    a.create(
        claim_key("servers", "host", "10.0.0.3"),
        encode_claim(row_key("servers", ("gone",)), left_behind),
    )
    added = store_b.servers.add("10.0.0.3", "root", "pw")
    # One claimed just now, its row not written yet (a member between the two): it counts.
    just_now = time.time_ns() // 1_000_000
    a.create(
        claim_key("servers", "host", "10.0.0.4"),
        encode_claim(row_key("servers", ("coming",)), just_now),
    )
    with pytest.raises(DuplicateServer):
        store_b.servers.add("10.0.0.4", "root", "pw")
    await until("the taken-over host on a", lambda: store_a.servers.get(added.id) is not None)


async def test_a_write_based_on_a_stale_copy_fails_and_nothing_is_lost(members) -> None:
    _a, store_a, _b, store_b = members
    user = store_a.users.create("stale@cluster.test", "pw", "read")
    await until("the user on b", lambda: store_b.users.get(user.id) is not None)

    # While a's copy cannot take in b's change (its lock held: a's applier waits), a writes
    # from what it has: the bucket refuses, and a's copy keeps what the bucket has.
    with store_a.database._lock:
        store_b.users.update(user.id, permission="write")
        with pytest.raises(WriteConflict):
            store_a.users.update(user.id, permission="admin")
    await until("b's change on a", lambda: store_a.users.get(user.id).permission == "write")
    store_a.users.update(user.id, permission="admin")  # from the fresh copy: accepted
    await until("a's change on b", lambda: store_b.users.get(user.id).permission == "admin")

    # The same email under another id is refused, created anywhere.
    with pytest.raises(DuplicateUser):
        store_b.users.create("stale@cluster.test", "pw")


async def test_a_deleted_user_takes_their_tokens_along_on_every_member(members) -> None:
    _a, store_a, _b, store_b = members
    user = store_a.users.create("leaving@cluster.test", "pw")
    created = store_a.tokens.create(user.id, description="theirs")
    await until("the token on b", lambda: store_b.tokens.lookup(created.token) is not None)
    assert store_a.users.delete(user.id)
    await until("the user gone on b", lambda: store_b.users.get(user.id) is None)
    await until("the token gone on b", lambda: store_b.tokens.get(created.record.id) is None)
    assert store_b.tokens.lookup(created.token) is None


async def test_without_nats_reads_go_on_writes_fail_and_it_resumes_after(
    members, nats_server: NatsServer
) -> None:
    a, store_a, b, store_b = members
    user = store_a.users.create("steady@cluster.test", "pw", "admin")
    created = store_a.tokens.create(user.id)
    await until("the token on b", lambda: store_b.tokens.lookup(created.token) is not None)

    await asyncio.to_thread(nats_server.stop)
    await until("b disconnected", lambda: not b.connected)
    assert store_b.users.verify_password("steady@cluster.test", "pw") is not None
    record = store_b.tokens.lookup(created.token)
    assert record is not None
    store_b.tokens.record_use(record.id, "192.0.2.1")  # best effort: no error
    started = time.monotonic()
    with pytest.raises(SharedStateUnavailable):
        store_b.users.create("while-down@cluster.test", "pw")
    assert time.monotonic() - started < 1.0  # refused at once, not after a timeout
    assert store_b.users.get_by_email("while-down@cluster.test") is None

    await asyncio.to_thread(nats_server.start)  # same port, same JetStream directory
    await until("both reconnected", lambda: a.connected and b.connected)
    later = store_b.users.create("after@cluster.test", "pw")
    await until("the watcher on a resumed", lambda: store_a.users.get(later.id) is not None)


async def test_the_first_member_of_a_new_cluster_brings_its_single_instance_database(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    single = Store.open(tmp_path / "single", cheap_hasher())
    user = single.users.create("before@cluster.test", "pw", "admin")
    created = single.tokens.create(user.id, description="from before")
    server = single.servers.add("10.0.0.9", "root", "xapi pw")
    single.close()
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "single", copy)

    first = SharedState([nats_server.url], "first")
    store_1 = await first.open_store(tmp_path / "single", cheap_hasher())
    # A second member started from a copy of the same file finds them in the bucket: it
    # imports nothing, and a third, without any file, has them all the same.
    second = SharedState([nats_server.url], "second")
    store_2 = await second.open_store(copy, cheap_hasher())
    third = SharedState([nats_server.url], "third")
    store_3 = await third.open_store(tmp_path / "empty", cheap_hasher())
    try:
        for store in (store_1, store_2, store_3):
            assert store.users.verify_password("before@cluster.test", "pw") is not None
            assert store.tokens.lookup(created.token) is not None
            assert store.servers.get(server.id).password == "xapi pw"
            assert [u.email for u in store.users.list()] == ["before@cluster.test"]
        # Later starts do not import the file again: a deletion in the cluster stays one.
        assert store_3.tokens.delete([created.record.id]) == 1
        await until("the deletion on 1", lambda: store_1.tokens.get(created.record.id) is None)
    finally:
        for shared, store in ((first, store_1), (second, store_2), (third, store_3)):
            store.close()
            await shared.close()
    again = SharedState([nats_server.url], "again")
    store_again = await again.open_store(copy, cheap_hasher())  # the file still has the token
    try:
        assert store_again.tokens.lookup(created.token) is None
    finally:
        store_again.close()
        await again.close()


async def test_reads_do_not_wait_for_a_write_nats_does_not_answer(
    members, nats_server: NatsServer
) -> None:
    _a, store_a, b, store_b = members
    user = store_a.users.create("reader@cluster.test", "pw")
    await until("the user on b", lambda: store_b.users.get_by_email(user.email) is not None)
    assert nats_server.process is not None
    nats_server.process.send_signal(signal.SIGSTOP)  # connected, but answering nothing
    try:
        writing = asyncio.ensure_future(
            asyncio.to_thread(store_b.users.create, "stuck@cluster.test", "pw")
        )
        await asyncio.sleep(0.3)  # the write is waiting for its acknowledgement
        assert not writing.done()
        started = time.monotonic()
        assert store_b.users.get_by_email(user.email) is not None
        assert store_b.users.count() == 1  # the stuck one is not there yet
        assert time.monotonic() - started < 0.2  # not behind the write's wait
        with pytest.raises(SharedStateUnavailable, match="did not acknowledge"):
            await writing  # bounded by the write timeout (2 s here)
    finally:
        nats_server.process.send_signal(signal.SIGCONT)
    assert store_b.users.get_by_email("stuck@cluster.test") is None
    assert b.connected
