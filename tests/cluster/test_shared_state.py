"""Users and tokens shared by real `xod serve` processes through a real nats-server: what one
instance writes, the others serve; what one deletes ends the sessions on the others; an
instance started with an empty state directory gets everything from NATS."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import websockets

from tests.api.harness import Client, RpcError
from tests.cluster.nats_server import NatsServer
from tests.daemon.helpers import XodProcess

ADMIN_EMAIL = "admin@cluster.test"
ADMIN_PASSWORD = "shared admin password"
REPLICATION_WAIT = 15.0  # seconds a change may take to reach another instance (loaded CI)

T = TypeVar("T")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    with NatsServer(tmp_path / "nats") as server:
        yield server


class Cluster:
    """`xod serve` processes sharing one NATS server, each with its own state directory."""

    def __init__(self, tmp_path: Path, nats_url: str) -> None:
        self.tmp_path = tmp_path
        self.nats_url = nats_url
        self.processes: list[XodProcess] = []

    def start(self, name: str) -> XodProcess:
        home = self.tmp_path / name
        home.mkdir()
        process = XodProcess(
            [
                "--listen",
                "127.0.0.1:0",
                "--state-dir",
                str(home / "state"),
                "--set",
                f"cluster.nats={self.nats_url}",
                "--set",
                f"cluster.instance={name}",
                "--set",
                f"admin.email={ADMIN_EMAIL}",
                "--set",
                f"admin.password={ADMIN_PASSWORD}",
            ],
            home,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def cluster(tmp_path: Path, nats_server: NatsServer) -> Iterator[Cluster]:
    running = Cluster(tmp_path, nats_server.url)
    try:
        yield running
    finally:
        running.stop()


@contextlib.asynccontextmanager
async def client(process: XodProcess) -> AsyncIterator[Client]:
    url = (await asyncio.to_thread(process.url)).replace("http", "ws", 1) + "/api/"
    async with websockets.connect(url) as ws:
        yield Client(ws)


async def eventually(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """`attempt()`'s result once it stops raising RpcError, within REPLICATION_WAIT."""
    last: RpcError | None = None
    try:
        async with asyncio.timeout(REPLICATION_WAIT):
            while True:
                try:
                    return await attempt()
                except RpcError as error:
                    last = error
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {REPLICATION_WAIT} s ({last})") from None


async def signed_out(what: str, connection: Client) -> RpcError:
    """The error of `connection`'s first call refused for want of a sign-in."""
    try:
        async with asyncio.timeout(REPLICATION_WAIT):
            while True:
                try:
                    await connection.call("session.getUser")
                except RpcError as error:
                    return error
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{what}: still signed in after {REPLICATION_WAIT} s") from None


async def test_users_and_tokens_are_shared_and_deletions_end_sessions_everywhere(
    cluster: Cluster,
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    async with (
        client(a) as admin_a,
        client(b) as admin_b,
        client(a) as token_on_a,
        client(a) as user_on_a,
        client(b) as user_on_b,
        client(b) as token_on_b,
    ):
        # One first admin for both (they started together; the email is claimed once).
        await admin_a.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        await eventually("the admin on b", lambda: admin_b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD))
        admins = await admin_b.call("user.getAll")
        assert [u["email"] for u in admins] == [ADMIN_EMAIL]

        user_id = await admin_a.call(
            "user.create", {"email": "ops@cluster.test", "password": "ops pw"}
        )
        signed_in = await eventually(
            "a user created on a signing in on b",
            lambda: user_on_b.sign_in("ops@cluster.test", "ops pw"),
        )
        assert signed_in["id"] == user_id
        await user_on_a.sign_in("ops@cluster.test", "ops pw")

        token = await admin_a.call("token.create", {"description": "made on a"})
        by_token = await eventually(
            "a token created on a working on b",
            lambda: token_on_b.call("session.signIn", {"token": token}),
        )
        assert by_token["email"] == ADMIN_EMAIL
        await token_on_a.call("session.signIn", {"token": token})
        [record] = await admin_b.call("user.getAuthenticationTokens")
        assert record["description"] == "made on a"

        # Deleted on b: its sessions on a end as they do on the instance that deleted it
        # (xod signs them out; their next call is refused, tests/api/test_session_revocation.py).
        await admin_b.call("token.delete", {"tokens": [record["id"]]})
        refused = await signed_out("the token's session on a", token_on_a)
        assert refused.code == 2
        assert (await signed_out("the token's session on b", token_on_b)).code == 2
        assert (await admin_a.call("session.getUser"))["email"] == ADMIN_EMAIL  # a password's

        await admin_b.call("user.delete", {"id": user_id})
        assert (await signed_out("the deleted user's session on a", user_on_a)).code == 2
        assert (await signed_out("the deleted user's session on b", user_on_b)).code == 2
        with pytest.raises(RpcError) as raised:
            await user_on_a.sign_in("ops@cluster.test", "ops pw")
        assert raised.value.code == 3


async def test_one_email_created_on_two_instances_at_once_exists_once(cluster: Cluster) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    async with client(a) as on_a, client(b) as on_b:
        await on_a.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        await eventually("the admin on b", lambda: on_b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD))
        for round_number in range(5):
            email = f"race-{round_number}@cluster.test"
            outcomes = await asyncio.gather(
                on_a.call("user.create", {"email": email, "password": "a"}),
                on_b.call("user.create", {"email": email, "password": "b"}),
                return_exceptions=True,
            )
            created = [o for o in outcomes if isinstance(o, str)]
            refused = [o for o in outcomes if isinstance(o, RpcError)]
            assert len(created) == 1, outcomes
            assert [error.code for error in refused] == [16], outcomes  # objectAlreadyExists

        async def users_on(connection: Client) -> list[str]:
            return sorted(u["email"] for u in await connection.call("user.getAll"))

        expected = sorted([ADMIN_EMAIL] + [f"race-{n}@cluster.test" for n in range(5)])
        assert await users_on(on_a) == expected
        async with asyncio.timeout(REPLICATION_WAIT):
            while await users_on(on_b) != expected:
                await asyncio.sleep(0.05)


async def test_an_instance_started_on_an_empty_state_directory_gets_the_state_from_nats(
    cluster: Cluster,
) -> None:
    a = cluster.start("a")
    async with client(a) as admin:
        await admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        user_id = await admin.call(
            "user.create", {"email": "kept@cluster.test", "password": "kept pw"}
        )
        token = await admin.call("token.create", {"description": "kept"})
    a.stop()
    assert a.proc.returncode == 0, a.stderr

    fresh = cluster.start("fresh")  # a new state directory: nothing on disk but NATS
    async with client(fresh) as by_password, client(fresh) as by_token:
        # Loaded before the daemon listens: no waiting.
        user = await by_password.sign_in("kept@cluster.test", "kept pw")
        assert user["id"] == user_id
        signed_in: dict[str, Any] = await by_token.call("session.signIn", {"token": token})
        assert signed_in["email"] == ADMIN_EMAIL
    # The first admin was not created again: the users came from NATS before the first start.
    assert "first admin created" not in fresh.stderr


async def test_groups_and_acls_made_on_one_instance_apply_on_the_other(cluster: Cluster) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    async with client(a) as admin_a, client(b) as admin_b, client(b) as viewer_on_b:
        await admin_a.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        await eventually("the admin on b", lambda: admin_b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD))
        viewer = await admin_a.call("user.create", {"email": "v@cluster.test", "password": "v"})
        await eventually("the viewer on b", lambda: viewer_on_b.sign_in("v@cluster.test", "v"))
        assert await viewer_on_b.call("acl.getCurrentPermissions") == {}  # computed: cached

        # An ACL added on a: b's cached permissions of the viewer are dropped.
        await admin_a.call(
            "acl.add", {"subject": viewer, "object": "vm-of-the-viewer", "action": "viewer"}
        )
        async with asyncio.timeout(REPLICATION_WAIT):
            while await viewer_on_b.call("acl.getCurrentPermissions") == {}:
                await asyncio.sleep(0.05)
        assert "vm-of-the-viewer" in await viewer_on_b.call("acl.getCurrentPermissions")

        # A group and a membership made on a show on b, in the user's record too.
        group = await admin_a.call("group.create", {"name": "operators"})
        await admin_a.call("group.addUser", {"id": group, "userId": viewer})

        async def viewer_groups() -> list[str]:
            users = await admin_b.call("user.getAll")
            groups: list[str] = next(u["groups"] for u in users if u["id"] == viewer)
            return groups

        async with asyncio.timeout(REPLICATION_WAIT):
            while await viewer_groups() != [group]:
                await asyncio.sleep(0.05)
        with pytest.raises(RpcError) as raised:
            await admin_b.call("group.create", {"name": "operators"})
        assert raised.value.code == 16
