"""Listings write each object's stored JSON (xod/cache/encoded.py): `xo.getAllObjects` (JSON
reply and NDJSON download), REST `fields=*` listings and unprojected subscription snapshots.
What a client receives parses to exactly the cache's objects, a changed object is served in its
new version, msgpack clients get the same objects, and nothing is kept before a first listing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgpack
import orjson

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD, connect
from tests.api.live_support import is_changes, next_message, set_vm, user_vms, wait_until
from tests.rest.helpers import RestLab, rest_lab
from xod.metrics import WS_OUTPUT


def cached(lab: RestLab) -> dict[str, Any]:
    return dict(lab.app.objects.objects)


async def rename_a_vm(lab: RestLab, name: str) -> str:
    """Rename a VM in the simulator; its id once xod's cache shows the new name."""
    vm_id = set_vm(lab.sim, sorted(user_vms(lab.sim))[0], name_label=name)
    await wait_until(lambda: (lab.app.objects.get(vm_id) or {}).get("name_label") == name)
    return vm_id


async def get_all_objects_raw(lab: RestLab) -> bytes:
    """The reply frame of xo.getAllObjects on the admin connection, as received."""
    await lab.rpc.ws.send('{"id":"all","jsonrpc":"2.0","method":"xo.getAllObjects"}')
    async with asyncio.timeout(10):  # the reply, past any notification
        while True:
            frame = await lab.rpc.ws.recv()
            assert isinstance(frame, str)
            if frame.startswith('{"id":"all"'):
                return frame.encode()


async def test_get_all_objects_joins_stored_json_and_serves_changes(tmp_path: Path) -> None:
    async with rest_lab(tmp_path, hosts=1, vms=3) as lab:
        encoded = lab.app.objects.encoded
        assert len(encoded) == 0  # nobody listed yet: nothing kept
        reply = orjson.loads(await get_all_objects_raw(lab))
        assert reply["result"] == cached(lab)
        # Kept for the next listing: one entry per object, each the object's own JSON.
        assert len(encoded) == len(lab.app.objects)
        assert all(
            orjson.loads(encoded.json(i, o)) == o for i, o in lab.app.objects.objects.items()
        )
        vm_id = await rename_a_vm(lab, "renamed once")
        reply = orjson.loads(await get_all_objects_raw(lab))
        assert reply["result"][vm_id]["name_label"] == "renamed once"
        assert reply["result"] == cached(lab)
        # The NDJSON download writes the same stored bytes, one object per line.
        url = (await lab.rpc.call("xo.getAllObjects", {"ndjson": True}))["$getFrom"]
        async with lab.http.get(lab.app.url + url) as response:
            lines = (await response.read()).splitlines()
        assert {o["id"]: o for o in map(orjson.loads, lines)} == cached(lab)
        # msgpack clients get the objects packed as usual.
        async with connect(lab.app, subprotocols=["xod.msgpack"]) as packed:
            await packed.ws.send(
                msgpack.packb(
                    {
                        "id": 1,
                        "jsonrpc": "2.0",
                        "method": "session.signIn",
                        "params": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                    }
                )
            )
            await next_message(packed, lambda m: m.get("id") == 1)
            await packed.ws.send(
                msgpack.packb({"id": 2, "jsonrpc": "2.0", "method": "xo.getAllObjects"})
            )
            reply = await next_message(packed, lambda m: m.get("id") == 2)
        assert reply["result"] == cached(lab)


async def test_a_filtered_listing_is_the_selected_objects(tmp_path: Path) -> None:
    async with rest_lab(tmp_path, hosts=1, vms=3) as lab:
        vms = await lab.rpc.call("xo.getAllObjects", {"filter": {"type": "VM"}})
        assert vms == {i: o for i, o in cached(lab).items() if o["type"] == "VM"}
        assert await lab.rpc.call("xo.getAllObjects", {"filter": {"type": "none"}}) == {}
        assert len(await lab.rpc.call("xo.getAllObjects", {"limit": 2})) == 2


async def test_rest_whole_object_listings_splice_stored_json(tmp_path: Path) -> None:
    async with rest_lab(tmp_path, hosts=1, vms=3) as lab:

        def expected() -> list[Any]:
            vms = [o for o in cached(lab).values() if o["type"] == "VM"]
            return sorted(({**o, "href": f"/rest/v0/vms/{o['id']}"} for o in vms), key=str)

        assert sorted(await lab.get_json("/vms?fields=*"), key=str) == expected()
        assert len(lab.app.objects.encoded) >= len(expected())
        vm_id = await rename_a_vm(lab, "renamed for REST")
        listed = await lab.get_json("/vms?fields=*")
        assert sorted(listed, key=str) == expected()
        assert any(o["id"] == vm_id and o["name_label"] == "renamed for REST" for o in listed)
        response = await lab.request("GET", "/vms?fields=*&ndjson=true")
        lines = (await response.read()).splitlines()
        assert sorted(map(orjson.loads, lines), key=str) == expected()
        # A projection is encoded as projected, not from the stored whole object.
        named = await lab.get_json("/vms?fields=name_label")
        assert all(set(o) == {"name_label", "href"} for o in named)


async def test_subscription_snapshot_from_stored_json(tmp_path: Path) -> None:
    async with rest_lab(tmp_path, hosts=1, vms=3) as lab:
        await lab.rpc.call("xod.setAllNotifications", {"enabled": False})
        reply = await lab.rpc.call("xod.subscribe", {})
        snapshot = await next_message(lab.rpc, is_changes(reply["subscription"]))
        assert snapshot["params"]["enter"] == cached(lab)
        assert len(lab.app.objects.encoded) == len(lab.app.objects)
        # Projected snapshots stay projected.
        reply = await lab.rpc.call(
            "xod.subscribe", {"filter": {"type": "VM"}, "fields": ["name_label"]}
        )
        snapshot = await next_message(lab.rpc, is_changes(reply["subscription"]))
        assert snapshot["params"]["enter"]
        assert all(
            set(o) <= {"id", "type", "name_label"} for o in snapshot["params"]["enter"].values()
        )


async def test_a_big_reply_leaves_in_slices_as_one_whole_frame(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # Slices of 1000 bytes: the lab's listing (tens of KiB) is a "big" reply here.
    monkeypatch.setattr("xod.server.ws.SLICED_PAYLOAD", 1000)
    monkeypatch.setattr("xod.server.frames.SLICED_PAYLOAD", 1000)
    async with rest_lab(tmp_path, hosts=1, vms=3) as lab:
        sent = WS_OUTPUT.frames
        raw = await get_all_objects_raw(lab)
        assert len(raw) > 10_000 and WS_OUTPUT.frames - sent > 10  # written in pieces…
        assert orjson.loads(raw)["result"] == cached(lab)  # …received as one frame
        # Replies and notifications queued behind it follow it whole.
        vm_id = await rename_a_vm(lab, "after a sliced reply")
        assert (await lab.rpc.call("xo.getAllObjects"))[vm_id][
            "name_label"
        ] == "after a sliced reply"
