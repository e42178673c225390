"""A regular expression in a filter cannot stop the daemon: a `read` user's pathological
patterns (exponential for a backtracking engine) get correct answers at once over the socket,
in xo.getAllObjects and in xod.subscribe (evaluated again on every change), while another
client keeps being answered; what RE2 cannot run is an invalid-parameters error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

from tests.api.harness import Client, RpcError, connect
from tests.api.live_support import is_changes, next_message, pool_and_xod, set_vm, user_vms
from xod.server.app import XodApp

LONG = 5_000  # a backtracking engine needs ~2**LONG steps on "a" * LONG + "!"
ANSWER_TIMEOUT = 5.0

# xod runs in-process here: a regexp engine stuck in C would hold the interpreter, and no timeout
# can interrupt it (tests/daemon/test_filter_patterns.py runs the same attack on the real process,
# where the client's timeout fails the test instead).
pytestmark = pytest.mark.timeout(90)


@contextlib.asynccontextmanager
async def read_user(app: XodApp, admin: Client) -> AsyncIterator[Client]:
    await admin.call("user.create", {"email": "r@x.test", "password": "pw-r", "permission": "read"})
    async with connect(app) as reader:
        assert (await reader.sign_in("r@x.test", "pw-r"))["permission"] == "read"
        yield reader


async def renamed_in_cache(client: Client, name_label: str) -> str:
    """Wait until xod's cache holds the simulator's rename; returns the object's id."""
    async with asyncio.timeout(ANSWER_TIMEOUT):  # waits for: the event reaching the cache
        while not (
            found := await client.call("xo.getAllObjects", {"filter": {"name_label": name_label}})
        ):
            await asyncio.sleep(0.02)
    [object_id] = found
    return object_id


async def while_answering(other: Client, work: Awaitable[Any]) -> Any:
    """Run `work` while `other` keeps calling; each of its answers must come within a bound."""
    task = asyncio.ensure_future(work)
    answered = 0
    while not task.done() or answered == 0:
        async with asyncio.timeout(ANSWER_TIMEOUT):  # waits for: the other client's answer
            assert (await other.call("session.getUser"))["permission"] == "admin"
        answered += 1
        await asyncio.sleep(0.01)
    return await task


async def test_get_all_objects_with_a_pathological_regexp(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path, vms=4) as (sim, app), connect(app) as admin:
        await admin.sign_in()
        vm_id = next(iter(user_vms(sim).values()))["uuid"]
        async with read_user(app, admin) as reader:

            async def read_calls() -> None:
                # The reported filter: 2**36 steps for a backtracking engine on a uuid.
                found = await reader.call(
                    "xo.getAllObjects", {"filter": f"id:{vm_id} id:/^([0-9a-f-]+)+Z/"}
                )
                assert found == {}
                found = await reader.call("xo.getAllObjects", {"filter": f"id:/^{vm_id}$/"})
                assert list(found) == [vm_id]

            await while_answering(admin, read_calls())

            set_vm(sim, next(iter(user_vms(sim))), name_label="a" * LONG + "!")
            renamed = await renamed_in_cache(admin, "a" * LONG + "!")
            none = await reader.call("xo.getAllObjects", {"filter": "name_label:/^(a+)+$/"})
            assert none == {}
            found = await reader.call("xo.getAllObjects", {"filter": "name_label:/^(a+)+!$/"})
            assert list(found) == [renamed]

            with pytest.raises(RpcError) as raised:
                await reader.call("xo.getAllObjects", {"filter": r"name_label:/(a)\1/"})
            assert raised.value.code == 10
            [problem] = raised.value.data["errors"]
            assert problem["instancePath"] == "/filter"
            assert problem["params"] == {"position": 15}
            assert "backreference \\1 is not supported" in problem["message"]
            assert await admin.call("session.getUser")  # still serving


async def test_subscription_with_a_pathological_regexp(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path, vms=4) as (sim, app), connect(app) as admin:
        await admin.sign_in()
        refs = sorted(user_vms(sim))
        # Before subscribing: the snapshot evaluates the filter on these.
        set_vm(sim, refs[0], name_label="a" * LONG + "!")
        in_snapshot = set_vm(sim, refs[3], name_label="a" * (LONG - 1))
        await renamed_in_cache(admin, "a" * LONG + "!")
        await renamed_in_cache(admin, "a" * (LONG - 1))
        async with read_user(app, admin) as reader:
            await reader.call("xod.setAllNotifications", {"enabled": False})
            subscribed = await while_answering(
                admin, reader.call("xod.subscribe", {"filter": "name_label:/(a+)+$/"})
            )
            subscription = subscribed["subscription"]
            snapshot = await next_message(reader, is_changes(subscription), ANSWER_TIMEOUT)
            assert list(snapshot["params"]["enter"]) == [in_snapshot]

            # Every change is filtered again: one that does not match, then one that does.
            set_vm(sim, refs[1], name_label="a" * LONG + "!")
            matching = set_vm(sim, refs[2], name_label="a" * LONG)

            async def entered() -> dict[str, Any]:
                message = await next_message(reader, is_changes(subscription), ANSWER_TIMEOUT)
                return message["params"]["enter"]

            assert list(await while_answering(admin, entered())) == [matching]

            with pytest.raises(RpcError) as raised:
                await reader.call("xod.subscribe", {"filter": "name_label:/web(?=-prod)/"})
            assert raised.value.code == 10
            [problem] = raised.value.data["errors"]
            assert problem["params"] == {"position": 15}
            assert "lookahead (?=…) is not supported" in problem["message"]
