"""`xod.subscribe`: snapshot then changes, filters that objects enter and leave, projection,
resuming from a revision, `gone`, bookmarks, unsubscribe, and the msgpack subprotocol."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tests.api.harness import RpcError, connect
from tests.api.live_support import (
    decode,
    is_changes,
    next_message,
    pool_and_xod,
    set_vm,
    user_vms,
    wait_until,
)
from xod.server.changes import CHUNK_OBJECTS
from xod.sim.values import NULL_REF


async def _snapshot(client, subscription: str, revision: int) -> dict[str, Any]:
    """Frames of the snapshot (all carry the subscription's starting revision)."""
    objects: dict[str, Any] = {}
    message = await next_message(client, is_changes(subscription))
    assert message["params"]["revision"] >= revision
    objects.update(message["params"]["enter"])
    return objects


async def test_filtered_subscription_objects_enter_and_exit(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path, vms=8) as (sim, app), connect(app) as client:
        await client.sign_in()
        await client.call("xod.setAllNotifications", {"enabled": False})
        vms = user_vms(sim)
        running = sorted(r for r, v in vms.items() if v["power_state"] == "Running")
        halted = sorted(r for r, v in vms.items() if v["power_state"] == "Halted")
        assert running and halted
        scope = {
            "filter": {"type": "VM", "power_state": "Running"},
            "fields": ["id", "name_label", "power_state", "CPUs.number"],
        }
        result = await client.call("xod.subscribe", scope)
        subscription = result["subscription"]
        assert result["revision"] == app.objects.revision
        snapshot = await _snapshot(client, subscription, result["revision"])
        assert sorted(snapshot) == sorted(vms[r]["uuid"] for r in running)
        some = snapshot[vms[running[0]]["uuid"]]
        assert set(some) == {"id", "name_label", "power_state", "CPUs"}
        assert set(some["CPUs"]) == {"number"}

        # Leaves the filter: an exit.
        stopped = set_vm(sim, running[0], power_state="Halted", resident_on=NULL_REF)
        message = await next_message(client, is_changes(subscription))
        assert message["params"]["exit"] == [stopped] and message["params"]["enter"] == {}
        assert message["params"]["revision"] == app.objects.revision

        # A change of a non-matching object is not sent; one that starts matching enters.
        set_vm(sim, halted[0], name_label="still-halted")
        await asyncio.sleep(0.2)
        started = set_vm(sim, halted[1], power_state="Running", resident_on=sim.pool.master)
        message = await next_message(client, is_changes(subscription))
        assert list(message["params"]["enter"]) == [started]
        assert message["params"]["enter"][started]["power_state"] == "Running"
        assert message["params"]["exit"] == []

        # Two subscriptions of one scope each get their own id on the shared payload.
        second = (await client.call("xod.subscribe", scope))["subscription"]
        await _snapshot(client, second, 0)
        renamed = set_vm(sim, running[1], name_label="both-see-it")
        got: dict[str, Any] = {}
        while len(got) < 2:
            m = await next_message(client, lambda m: m.get("method") == "xod.changes")
            got[m["params"]["subscription"]] = m["params"]
        assert got[subscription]["enter"] == got[second]["enter"]
        assert got[subscription]["enter"][renamed]["name_label"] == "both-see-it"

        assert await client.call("xod.unsubscribe", {"subscription": second}) is True
        with pytest.raises(RpcError) as error:
            await client.call("xod.unsubscribe", {"subscription": second})
        assert error.value.code == 1


async def test_resume_replays_exactly_the_missed_changes(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path, vms=8) as (sim, app):
        refs = sorted(user_vms(sim))
        async with connect(app) as client:
            await client.sign_in()
            result = await client.call("xod.subscribe", {"filter": {"type": "VM"}})
            snapshot = await _snapshot(client, result["subscription"], result["revision"])
            assert len(snapshot) >= 8
            revision = result["revision"]
        # Disconnected: changes happen meanwhile.
        a = set_vm(sim, refs[0], name_label="missed-1")
        b = set_vm(sim, refs[1], name_label="missed-2a")
        await asyncio.sleep(0.1)
        set_vm(sim, refs[1], name_label="missed-2b")
        c = sim.pool.db.tables["VM"][refs[2]]["uuid"]
        sim.pool.db.delete("VM", refs[2])
        await wait_until(
            lambda: c not in app.objects and app.objects.get(b)["name_label"] == "missed-2b"
        )
        async with connect(app) as client:
            await client.sign_in()
            result = await client.call(
                "xod.subscribe", {"filter": {"type": "VM"}, "since": revision}
            )
            message = await next_message(client, is_changes(result["subscription"]))
        params = message["params"]
        assert params["revision"] == app.objects.revision
        assert sorted(params["enter"]) == sorted([a, b])
        assert params["enter"][b]["name_label"] == "missed-2b"
        assert params["enter"][a] == app.objects.get(a)
        # Exits: the deleted VM; any other id is one the client never held (the history keeps
        # ids only, so deleted objects of other types cannot be told apart and are listed too).
        assert c in params["exit"]
        assert not (set(params["exit"]) - {c}) & set(snapshot)
        state = {i: o for i, o in snapshot.items() if i not in params["exit"]} | params["enter"]
        assert state == {i: o for i, o in app.objects.objects.items() if o["type"] == "VM"}


async def test_too_old_revision_is_gone(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path) as (sim, app), connect(app) as client:
        await client.sign_in()
        # Shrink the history so that a few changes push revision 1 out of it.
        app.objects.history_seconds = 0
        app.objects.history_changes = 1
        refs = sorted(user_vms(sim))
        for i in range(3):
            set_vm(sim, refs[0], name_label=f"churn-{i}")
            await asyncio.sleep(0.08)
        await wait_until(lambda: app.objects.oldest_revision > 1)
        with pytest.raises(RpcError) as error:
            await client.call("xod.subscribe", {"since": 1})
        assert error.value.code == 410
        assert error.value.data["revision"] == 1
        assert error.value.data["current"] == app.objects.revision
        with pytest.raises(RpcError) as error:
            await client.call("xod.subscribe", {"since": app.objects.revision + 100})
        assert error.value.code == 410
        with pytest.raises(RpcError) as error:
            await client.call("xod.subscribe", {"filter": "type:(VM"})
        assert error.value.code == 10


async def test_idle_subscription_gets_bookmarks(tmp_path: Path) -> None:
    async with (
        pool_and_xod(tmp_path, bookmark_interval=0.3) as (sim, app),
        connect(app) as client,
    ):
        await client.sign_in()
        result = await client.call("xod.subscribe", {"filter": "type:no-such-type"})
        first = await next_message(client, is_changes(result["subscription"]))
        assert first["params"]["enter"] == {} and first["params"]["exit"] == []
        # Other objects change: the subscription sees nothing but its bookmark's revision moves.
        set_vm(sim, sorted(user_vms(sim))[0], name_label="elsewhere")
        await wait_until(lambda: app.objects.revision > result["revision"])
        bookmark = await next_message(
            client,
            lambda m: (
                is_changes(result["subscription"])(m)
                and m["params"]["revision"] == app.objects.revision
            ),
            timeout=3,
        )
        assert bookmark["params"]["enter"] == {} and bookmark["params"]["exit"] == []


async def test_msgpack_subprotocol_round_trip(tmp_path: Path) -> None:
    async with (
        pool_and_xod(tmp_path) as (sim, app),
        connect(app, subprotocols=["xod.msgpack"]) as client,
    ):
        assert client.ws.subprotocol == "xod.msgpack"
        await client.ws.send(
            msgpack.packb(
                {
                    "id": -9007199254740991,
                    "jsonrpc": "2.0",
                    "method": "session.signIn",
                    "params": {
                        "email": "admin@example.test",
                        "password": "correct horse battery staple",
                    },
                }
            )
        )
        frame = await client.ws.recv()
        assert isinstance(frame, bytes)  # a binary frame
        reply = msgpack.unpackb(frame)
        assert reply["id"] == -9007199254740991 and reply["result"]["permission"] == "admin"
        # A JSON text request is still understood; its reply is msgpack too.
        await client.ws.send(
            '{"id":2,"jsonrpc":"2.0","method":"xod.subscribe","params":{"filter":{"type":"VM"}}}'
        )
        reply = await next_message(client, lambda m: m.get("id") == 2)
        subscription = reply["result"]["subscription"]
        snapshot = await next_message(client, is_changes(subscription))
        assert all(o["type"] == "VM" for o in snapshot["params"]["enter"].values())
        renamed = set_vm(sim, sorted(user_vms(sim))[0], name_label="packed")
        seen: dict[str, Any] = {}
        while len(seen) < 2:  # the `all` notification and the subscription's change
            m = await next_message(client, lambda m: m.get("method") in ("all", "xod.changes"))
            items = m["params"]["items" if m["method"] == "all" else "enter"]
            if renamed in items:
                seen[m["method"]] = items[renamed]
        assert seen["xod.changes"] == seen["all"] == app.objects.get(renamed)
        # Malformed input gets a msgpack parse error.
        await client.ws.send(b"\xc1")
        error = decode(await client.ws.recv())
        assert error["error"]["code"] == -32700


async def test_big_snapshot_arrives_in_chunks(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path, vms=150) as (_sim, app), connect(app) as client:
        await client.sign_in()
        await client.call("xod.setAllNotifications", {"enabled": False})
        expected = dict(app.objects.objects)
        assert len(expected) > CHUNK_OBJECTS
        result = await client.call("xod.subscribe")
        received: dict[str, Any] = {}
        frames = 0
        while len(received) < len(expected):
            message = await next_message(client, is_changes(result["subscription"]))
            assert message["params"]["revision"] == result["revision"]
            assert len(message["params"]["enter"]) <= CHUNK_OBJECTS
            received.update(message["params"]["enter"])
            frames += 1
        assert frames == -(-len(expected) // CHUNK_OBJECTS)
        assert received == expected
