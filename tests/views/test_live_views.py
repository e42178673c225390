"""Views live: an ACL added or removed by an admin on another socket brings objects in (`enter`)
or takes them out (`exit`) of a connected user's `all` stream and subscriptions, without
reconnecting; a VM leaving a permitted host leaves the view; users with equal grants share one
view and its encoded frames."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import orjson
import websockets
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.harness import Client
from tests.api.live_support import is_changes, next_message
from tests.rest.helpers import RestLab, rest_lab, wait_for
from tests.views.support import PASSWORD, add_user, grant, permitted, revoke, signed_in
from xod.metrics import StateCollector
from xod.server.app import XodApp


def _vm(lab: RestLab, name: str) -> dict[str, Any]:
    return next(o for o in lab.app.objects.by_type("VM").values() if o["name_label"] == name)


def _all(kind: str) -> Any:
    return lambda m: m.get("method") == "all" and m["params"]["type"] == kind


async def test_acl_added_then_removed_enters_then_exits_live(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        app = lab.app
        user_id = await add_user(lab.rpc, "late@example.test")
        vm = _vm(lab, "vm-00001")
        async with signed_in(app, "late@example.test") as viewer:
            sub = (await viewer.call("xod.subscribe", {"filter": {"type": "VM"}}))["subscription"]
            first = await next_message(viewer, is_changes(sub))
            assert first["params"]["enter"] == {}  # nothing granted yet
            assert await viewer.call("xo.getAllObjects") == {}

            await grant(app, lab.rpc, user_id, vm["id"], "viewer")
            entered = await next_message(viewer, _all("enter"))
            granted = permitted(app, user_id)
            assert vm["id"] in granted and len(granted) > 1  # the VM, its VIFs, VBDs, disks
            assert set(entered["params"]["items"]) == granted
            assert entered["params"]["items"][vm["id"]] == app.objects.get(vm["id"])
            changes = await next_message(viewer, is_changes(sub))
            assert set(changes["params"]["enter"]) == {vm["id"]}
            assert set(await viewer.call("xo.getAllObjects")) == granted

            await revoke(app, lab.rpc, user_id, vm["id"], "viewer")
            exited = await next_message(viewer, _all("exit"))
            assert exited["params"]["items"] == dict.fromkeys(granted, 0)
            changes = await next_message(viewer, is_changes(sub))
            assert changes["params"] == {
                "subscription": sub,
                "revision": changes["params"]["revision"],
                "enter": {},
                "exit": [vm["id"]],
            }
            # Its later changes are not sent.
            db = lab.sim.pool.db
            db.update("VM", db.by_uuid("VM", vm["id"]), {"name_label": "gone from view"})
            await wait_for(
                lambda: app.objects.get(vm["id"])["name_label"] == "gone from view", "rename"
            )
            try:
                message = await next_message(viewer, timeout=0.5)
            except TimeoutError:
                message = None
            assert message is None
            assert app.fanout.stats()["views"] == 1


async def test_a_vm_migrating_off_a_permitted_host_exits(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        app = lab.app
        user_id = await add_user(lab.rpc, "host-viewer@example.test")
        vm = _vm(lab, "vm-00000")
        host_id = vm["$container"]
        other_host = next(h for h in app.objects.by_type("host") if h != host_id)
        await grant(app, lab.rpc, user_id, host_id, "viewer")
        async with signed_in(app, "host-viewer@example.test") as viewer:
            assert vm["id"] in await viewer.call("xo.getAllObjects")
            db = lab.sim.pool.db
            db.update(
                "VM",
                db.by_uuid("VM", vm["id"]),
                {"resident_on": db.by_uuid("host", other_host)},
            )
            exited = await next_message(viewer, _all("exit"))
            assert vm["id"] in exited["params"]["items"]
            # Its VIFs inherited from it: they leave with it.
            assert set(vm["VIFs"]) <= set(exited["params"]["items"])
            assert set(await viewer.call("xo.getAllObjects")) == permitted(app, user_id)
            assert vm["id"] not in permitted(app, user_id)
            # And back: it enters again.
            db.update(
                "VM", db.by_uuid("VM", vm["id"]), {"resident_on": db.by_uuid("host", host_id)}
            )
            entered = await next_message(viewer, _all("enter"))
            assert vm["id"] in entered["params"]["items"]


def scraped(app: XodApp) -> dict[str, float]:
    """The fan-out's figures as a scrape of /metrics reads them (xod/metrics.py)."""
    registry = CollectorRegistry()
    registry.register(StateCollector(app.objects, app.pools, app.fanout.stats))
    text = generate_latest(registry).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_equal_grants_share_one_view_and_one_encoding(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        app = lab.app
        vm = _vm(lab, "vm-00002")
        users = [await add_user(lab.rpc, f"twin{i}@example.test") for i in range(2)]
        other = await add_user(lab.rpc, "other@example.test")
        for user_id in users:
            await grant(app, lab.rpc, user_id, vm["id"], "viewer")
        await grant(app, lab.rpc, other, _vm(lab, "vm-00003")["id"], "viewer")
        async with (
            signed_in(app, "twin0@example.test") as first,
            signed_in(app, "twin1@example.test") as second,
            signed_in(app, "other@example.test"),
        ):
            stats = app.fanout.stats()
            assert stats["views"] == 2 and stats["view_connections"] == 3
            before = stats["view_encodes"]
            metrics = scraped(app)  # as /metrics publishes them
            assert metrics["xod_views"] == 2 and metrics["xod_view_connections"] == 3
            assert metrics["xod_clients_connected"] == 4  # the three and the admin
            db = lab.sim.pool.db
            db.update("VM", db.by_uuid("VM", vm["id"]), {"name_label": "shared"})
            async with asyncio.timeout(5):
                frames = [await first.ws.recv(), await second.ws.recv()]
            assert frames[0] == frames[1]
            assert orjson.loads(frames[0])["params"]["items"][vm["id"]]["name_label"] == "shared"
            # One encoding for the two connections (the other view saw nothing).
            assert app.fanout.stats()["view_encodes"] == before + 1
            assert (
                scraped(app)["xod_view_all_encodes_total"]
                == metrics["xod_view_all_encodes_total"] + 1
            )
        await wait_for(lambda: app.fanout.stats()["views"] == 0, "views dropped")


async def test_the_dashboard_socket_shows_only_the_users_objects(tmp_path: Path) -> None:
    """The dashboard's socket, signed in by its cookie, reads through xod.subscribe: the
    viewer's VM list holds its VM only, and a grant adds one live."""
    async with rest_lab(tmp_path) as lab:
        app = lab.app
        user_id = await add_user(lab.rpc, "dash@example.test")
        mine, later = _vm(lab, "vm-00000")["id"], _vm(lab, "vm-00003")["id"]
        await grant(app, lab.rpc, user_id, mine, "viewer")
        body = {"email": "dash@example.test", "password": PASSWORD}
        async with lab.http.post(f"{app.url}/signin", json=body) as response:
            assert response.status == 200, await response.text()
            token = response.cookies["authenticationToken"].value
        headers = {"Origin": app.url, "Cookie": f"authenticationToken={token}"}
        async with websockets.connect(
            f"{app.url.replace('http', 'ws')}/api/", additional_headers=headers
        ) as ws:
            page = Client(ws)
            # The dashboard's VM list (xod/web/app.js: VM_TYPE, a few fields).
            params = {"filter": "type:/^VM$/", "fields": ["name_label", "power_state"]}
            sub = (await page.call("xod.subscribe", params))["subscription"]
            first = await next_message(page, is_changes(sub))
            assert set(first["params"]["enter"]) == {mine}
            await grant(app, lab.rpc, user_id, later, "viewer")
            more = await next_message(page, is_changes(sub))
            assert set(more["params"]["enter"]) == {later}


async def test_group_membership_and_level_changes_move_a_user_live(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        app = lab.app
        user_id = await add_user(lab.rpc, "member@example.test")
        vm = _vm(lab, "vm-00002")
        group_id = await lab.rpc.call("group.create", {"name": "watchers"})
        await grant(app, lab.rpc, group_id, vm["id"], "viewer")
        async with signed_in(app, "member@example.test") as viewer:
            # Joining the group brings what the group may see.
            assert await lab.rpc.call("group.addUser", {"id": group_id, "userId": user_id})
            entered = await next_message(viewer, _all("enter"))
            assert set(entered["params"]["items"]) == permitted(app, user_id)
            assert vm["id"] in entered["params"]["items"]
            # The `read` level sees everything: the rest of the cache enters.
            await lab.rpc.call("user.set", {"id": user_id, "permission": "read"})
            rest = await next_message(viewer, _all("enter"))
            seen = set(entered["params"]["items"]) | set(rest["params"]["items"])
            assert seen == set(app.objects.objects)
            assert app.fanout.stats()["views"] == 0
            # Back to `none` and out of the group: everything leaves.
            await lab.rpc.call("user.set", {"id": user_id, "permission": "none"})
            await lab.rpc.call("group.removeUser", {"id": group_id, "userId": user_id})
            left: set[str] = set()
            while left != set(app.objects.objects):
                message = await next_message(viewer, _all("exit"))
                left |= set(message["params"]["items"])
            assert await viewer.call("xo.getAllObjects") == {}


async def test_a_rest_watch_follows_grants_live(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        app = lab.app
        user_id = await add_user(lab.rpc, "watcher@example.test")
        vm = _vm(lab, "vm-00001")
        async with signed_in(app, "watcher@example.test") as client:
            token = await client.call("token.create", {"description": "watch"})
        async with lab.http.get(
            lab.url("/vms?ndjson=true&watch=true&fields=name_label"),
            cookies={"authenticationToken": token},
        ) as response:
            assert response.status == 200
            href = f"/rest/v0/vms/{vm['id']}"

            async def next_change() -> Any:
                async with asyncio.timeout(5):  # the watch's next update/remove line
                    while True:
                        line = orjson.loads(await response.content.readline())
                        if line[0] != "revision":
                            return line

            await grant(app, lab.rpc, user_id, vm["id"], "viewer")
            assert await next_change() == ["update", {"name_label": "vm-00001", "href": href}]
            await revoke(app, lab.rpc, user_id, vm["id"], "viewer")
            assert await next_change() == ["remove", {"href": href}]


async def test_past_the_view_bound_a_connection_is_closed_with_1013(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        app = lab.app
        app.fanout.views.max_views = 1  # MAX_VIEWS (1000), made reachable
        first = await add_user(lab.rpc, "first@example.test")
        await add_user(lab.rpc, "second@example.test")
        await grant(app, lab.rpc, first, _vm(lab, "vm-00000")["id"], "viewer")
        async with signed_in(app, "first@example.test") as kept:
            async with connect_raw(app) as refused:
                await refused.send(
                    orjson.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": 1,
                            "method": "session.signIn",
                            "params": {"email": "second@example.test", "password": PASSWORD},
                        }
                    ).decode()
                )
                async with asyncio.timeout(5):  # the close frame
                    with contextlib.suppress(websockets.ConnectionClosed):
                        while True:
                            await refused.recv()
                assert refused.close_code == 1013
                assert "too many distinct user views" in (refused.close_reason or "")
            # The view in use is untouched, and an admin is never refused.
            assert (await kept.call("session.getUser"))["email"] == "first@example.test"
            assert len(await lab.rpc.call("xo.getAllObjects")) == len(app.objects.objects)
        # Its last connection gone, the first view lingers (for a resume); a view in use
        # takes its place rather than being refused.
        await wait_for(lambda: app.fanout.stats()["views_lingering"] == 1, "the first view lingers")
        async with signed_in(app, "second@example.test") as second:
            assert (await second.call("session.getUser"))["email"] == "second@example.test"
            stats = app.fanout.stats()
            assert stats["views"] == 1 and stats["views_lingering"] == 0


def connect_raw(app: Any) -> Any:
    return websockets.connect(f"{app.url.replace('http', 'ws')}/api/")
