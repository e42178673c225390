"""XO's `all` notifications with a plain `websockets` client: enter with full
objects then exit with `{id: 0}`, only after sign-in, the same as `xo.getAllObjects` shows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.api.harness import connect
from tests.api.live_support import next_message, pool_and_xod, set_vm, user_vms


def _is_all(kind: str):
    return lambda m: m.get("method") == "all" and m["params"]["type"] == kind


async def test_signed_in_connections_get_enter_then_exit(tmp_path: Path) -> None:
    async with (
        pool_and_xod(tmp_path) as (sim, app),
        connect(app) as watcher,
        connect(app) as anonymous,
    ):
        await watcher.sign_in()
        refs = sorted(user_vms(sim))
        renamed = set_vm(sim, refs[0], name_label="live-renamed")
        message = await next_message(watcher, _is_all("enter"))
        assert message["jsonrpc"] == "2.0" and "id" not in message
        items = message["params"]["items"]
        assert items[renamed]["name_label"] == "live-renamed"
        # Full objects, exactly what the cache (and so xo.getAllObjects) holds.
        listed = await watcher.call("xo.getAllObjects", {"filter": {"id": renamed}})
        assert items[renamed] == listed[renamed] == app.objects.get(renamed)

        # A deletion arrives as an exit whose items map the id to 0.
        gone_uuid = sim.pool.db.tables["VM"][refs[1]]["uuid"]
        sim.pool.db.delete("VM", refs[1])
        exit_message = await next_message(watcher, _is_all("exit"))
        assert exit_message["params"]["items"] == {gone_uuid: 0}

        # Nothing was ever sent to the connection that did not sign in.
        with pytest.raises(TimeoutError):
            await next_message(anonymous, timeout=0.3)


async def test_enter_precedes_exit_in_one_batch_and_sign_out_stops(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path) as (sim, app), connect(app) as watcher:
        await watcher.sign_in()
        batches: list[tuple[set[str], set[str]]] = []
        app.objects.subscribe(lambda b: batches.append((set(b.enter), set(b.exit))))
        refs = sorted(user_vms(sim))
        # Both changes land in one event.from reply (the simulator batches for 50 ms).
        renamed = set_vm(sim, refs[2], name_label="same-batch")
        deleted = sim.pool.db.tables["VM"][refs[3]]["uuid"]
        sim.pool.db.delete("VM", refs[3])
        seen: list[tuple[str, list[str]]] = []
        while not any(kind == "exit" for kind, _ in seen):
            message = await next_message(watcher, lambda m: m.get("method") == "all")
            seen.append((message["params"]["type"], list(message["params"]["items"])))
        # One store batch held both: the rename entered and the deletion exited together…
        assert any(renamed in enter and deleted in exit_ids for enter, exit_ids in batches)
        # …and its enter frame came before its exit frame.
        enter_index = next(i for i, (k, ids) in enumerate(seen) if k == "enter" and renamed in ids)
        exit_index = next(i for i, (k, ids) in enumerate(seen) if k == "exit" and deleted in ids)
        assert enter_index < exit_index

        assert await watcher.call("session.signOut") is True
        set_vm(sim, refs[0], name_label="after-sign-out")
        await asyncio.sleep(0.3)
        with pytest.raises(TimeoutError):
            await next_message(watcher, lambda m: m.get("method") == "all", timeout=0.3)


async def test_opting_out_of_all_notifications(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path) as (sim, app), connect(app) as watcher:
        await watcher.sign_in()
        assert await watcher.call("xod.setAllNotifications", {"enabled": False}) is False
        set_vm(sim, sorted(user_vms(sim))[0], name_label="quiet")
        with pytest.raises(TimeoutError):
            await next_message(watcher, lambda m: m.get("method") == "all", timeout=0.5)
        assert await watcher.call("xod.setAllNotifications", {"enabled": True}) is True
        renamed = set_vm(sim, sorted(user_vms(sim))[0], name_label="loud")
        message = await next_message(watcher, lambda m: m.get("method") == "all")
        assert message["params"]["items"][renamed]["name_label"] == "loud"
