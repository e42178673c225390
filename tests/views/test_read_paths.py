"""A user with the permission `none` sees exactly what its ACLs grant `view` on (XO's
inheritance), through every read path: xo.getAllObjects (and its NDJSON download), the `all`
notifications, xod.subscribe (snapshot, live, resume), REST lists, objects, sub-collections and
watches."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.api.harness import RpcError
from tests.api.live_support import is_changes, next_message
from tests.rest.helpers import RestLab, rest_lab, wait_for
from tests.views.support import add_user, download, grant, permitted, signed_in, token_of


def _vms(lab: RestLab) -> dict[str, dict[str, Any]]:
    """name_label → XO VM object (vm-00000 … vm-00003)."""
    return {o["name_label"]: o for o in lab.app.objects.by_type("VM").values()}


def _rename(lab: RestLab, vm_id: str, name: str) -> None:
    db = lab.sim.pool.db
    db.update("VM", db.by_uuid("VM", vm_id), {"name_label": name})


def _is_all(m: Any) -> bool:
    return isinstance(m, dict) and m.get("method") == "all"


async def _setup(lab: RestLab) -> tuple[str, str, dict[str, dict[str, Any]]]:
    """A user granted viewer on one VM, one granted viewer on the pool."""
    vms = _vms(lab)
    vm_viewer = await add_user(lab.rpc, "vm-viewer@example.test")
    pool_viewer = await add_user(lab.rpc, "pool-viewer@example.test")
    pool_id = next(iter(lab.app.objects.by_type("pool")))
    await grant(lab.app, lab.rpc, vm_viewer, vms["vm-00000"]["id"], "viewer")
    await grant(lab.app, lab.rpc, pool_viewer, pool_id, "viewer")
    return vm_viewer, pool_viewer, vms


async def test_json_rpc_and_ndjson_show_only_permitted_objects(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        vm_viewer, pool_viewer, vms = await _setup(lab)
        app = lab.app
        seen_vm = permitted(app, vm_viewer)
        # The VM itself and what inherits from it (its disks through the VBDs, its VIFs), not
        # its host, its pool or the other VMs.
        vm = vms["vm-00000"]
        assert vm["id"] in seen_vm and vm["$container"] not in seen_vm
        assert set(vm["VIFs"]) <= seen_vm and set(vm["$VBDs"]) <= seen_vm
        assert vms["vm-00001"]["id"] not in seen_vm
        async with signed_in(app, "vm-viewer@example.test") as viewer:
            listed = await viewer.call("xo.getAllObjects")
            assert set(listed) == seen_vm
            assert listed[vm["id"]] == app.objects.get(vm["id"])
            # The filter and the limit apply to what the user sees (a limit of 1 on VMs
            # returns its VM, not the first VM of the cache).
            only_vms = await viewer.call("xo.getAllObjects", {"filter": {"type": "VM"}})
            assert list(only_vms) == [vm["id"]]
            limited = await viewer.call("xo.getAllObjects", {"filter": {"type": "VM"}, "limit": 1})
            assert list(limited) == [vm["id"]]
            url = (await viewer.call("xo.getAllObjects", {"ndjson": True}))["$getFrom"]
            token = await viewer.call("token.create", {"description": "ndjson"})
            lines = (await download(app, url, token)).splitlines()
            assert {orjson.loads(line)["id"] for line in lines} == seen_vm
        seen_pool = permitted(app, pool_viewer)
        async with signed_in(app, "pool-viewer@example.test") as viewer:
            listed = await viewer.call("xo.getAllObjects")
            assert set(listed) == seen_pool
            assert {v["id"] for v in vms.values()} <= seen_pool  # every VM of the pool
        # An admin still sees everything.
        assert set(await lab.rpc.call("xo.getAllObjects")) == set(app.objects.objects)


async def test_all_and_subscriptions_carry_only_permitted_changes(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        vm_viewer, _pool_viewer, vms = await _setup(lab)
        app = lab.app
        mine, other = vms["vm-00000"]["id"], vms["vm-00001"]["id"]
        async with (
            signed_in(app, "vm-viewer@example.test") as keeper,  # keeps the view alive
            signed_in(app, "vm-viewer@example.test") as viewer,
        ):
            sub = await viewer.call("xod.subscribe", {})
            snapshot = await next_message(viewer, is_changes(sub["subscription"]))
            assert set(snapshot["params"]["enter"]) == permitted(app, vm_viewer)
            # A change to a VM it may not see sends nothing; the next one it may see arrives
            # alone, on `all` and on the subscription.
            _rename(lab, other, "not for you")
            await _wait_name(lab, other, "not for you")
            _rename(lab, mine, "yours")
            got_all = await next_message(viewer, _is_all)
            assert got_all["params"] == {
                "type": "enter",
                "items": {mine: app.objects.get(mine)},
            }
            got = await next_message(viewer, is_changes(sub["subscription"]))
            assert set(got["params"]["enter"]) == {mine} and got["params"]["exit"] == []
            resume_from = got["params"]["revision"]
            _rename(lab, other, "still not for you")
            _rename(lab, mine, "yours again")
            await _wait_name(lab, mine, "yours again")
            await _wait_name(lab, other, "still not for you")
            await viewer.ws.close()
            # A new connection resumes after `resume_from`: the change it may see, nothing else.
            async with signed_in(app, "vm-viewer@example.test") as viewer:
                resumed = await viewer.call("xod.subscribe", {"since": resume_from})
                missed = await next_message(viewer, is_changes(resumed["subscription"]))
                assert set(missed["params"]["enter"]) == {mine}
                assert missed["params"]["exit"] == []
                # Filtered and projected subscriptions see the same subset.
                names = await viewer.call(
                    "xod.subscribe", {"filter": {"type": "VM"}, "fields": ["name_label"]}
                )
                first = await next_message(viewer, is_changes(names["subscription"]))
                assert first["params"]["enter"] == {mine: {"name_label": "yours again"}}
            await keeper.call("session.getUser")
        # The last connection closed: the view lingers a while, so a reconnect (a network
        # blip, a reload) still resumes after `resume_from`.
        await wait_for(lambda: app.fanout.stats()["views_lingering"] == 1, "the view lingers")
        async with signed_in(app, "vm-viewer@example.test") as viewer:
            assert app.fanout.stats()["views_lingering"] == 0  # back in use
            resumed = await viewer.call("xod.subscribe", {"since": resume_from})
            missed = await next_message(viewer, is_changes(resumed["subscription"]))
            assert set(missed["params"]["enter"]) == {mine} and missed["params"]["exit"] == []
            app.fanout.groups.linger = 0.2  # this time, it goes soon after
        await wait_for(lambda: not app.fanout.groups.by_key, "the view dropped")
        # Once the view is gone, who saw what is unknown: 410, and the client subscribes again
        # without `since`.
        async with signed_in(app, "vm-viewer@example.test") as viewer:
            with pytest.raises(RpcError) as refused:
                await viewer.call("xod.subscribe", {"since": resume_from})
            assert refused.value.code == 410


async def _wait_name(lab: RestLab, vm_id: str, name: str) -> None:
    await wait_for(
        lambda: (lab.app.objects.get(vm_id) or {}).get("name_label") == name, f"{name} cached"
    )


async def test_rest_lists_objects_and_watches_only_permitted(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        vm_viewer, _pool_viewer, vms = await _setup(lab)
        app = lab.app
        mine, other = vms["vm-00000"]["id"], vms["vm-00001"]["id"]
        token = await token_of(app, "vm-viewer@example.test")
        assert await lab.get_json("/vms", token=token) == [f"/rest/v0/vms/{mine}"]
        assert await lab.get_json("/hosts", token=token) == []
        listed = await lab.get_json("/vbds?fields=id", token=token)
        assert {v["id"] for v in listed} == set(vms["vm-00000"]["$VBDs"])
        assert (await lab.request("GET", f"/vms/{mine}", token=token)).status == 200
        hidden = await lab.request("GET", f"/vms/{other}", token=token)
        assert hidden.status == 404  # as if it did not exist
        host = await lab.request("GET", f"/hosts/{vms['vm-00000']['$container']}", token=token)
        assert host.status == 404
        disks = await lab.get_json(f"/vms/{mine}/vdis?fields=id", token=token)
        assert {d["id"] for d in disks} == {
            i for i in permitted(app, vm_viewer) if app.objects.get(i)["type"] == "VDI"
        }
        assert (await lab.request("GET", f"/vms/{other}/vdis", token=token)).status == 404
        # The admin's view is unchanged.
        assert len(await lab.get_json("/vms")) == len(vms)

        async with lab.http.get(
            lab.url("/vms?ndjson=true&watch=true&fields=name_label"),
            cookies={"authenticationToken": token},
        ) as response:
            assert response.status == 200
            _rename(lab, other, "hidden change")
            await _wait_name(lab, other, "hidden change")
            _rename(lab, mine, "visible change")
            lines: list[Any] = []
            while not lines or lines[-1][0] != "update":
                async with asyncio.timeout(5):  # the watch's update line
                    lines.append(orjson.loads(await response.content.readline()))
            updates = [line for line in lines if line[0] == "update"]
            assert updates == [
                ["update", {"name_label": "visible change", "href": f"/rest/v0/vms/{mine}"}]
            ]


@pytest.mark.parametrize("level", ["read", "write"])
async def test_global_read_and_write_levels_see_everything(tmp_path: Path, level: str) -> None:
    async with rest_lab(tmp_path) as lab:
        await add_user(lab.rpc, f"{level}@example.test", level)
        async with signed_in(lab.app, f"{level}@example.test") as client:
            assert set(await client.call("xo.getAllObjects")) == set(lab.app.objects.objects)
            assert lab.app.fanout.stats()["views"] == 0  # the unfiltered path


async def test_a_rest_watch_resumes_through_the_view(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        lab.app.fanout.groups.linger = 0  # a view goes with its last connection (token_of's)
        _vm_viewer, _pool_viewer, vms = await _setup(lab)
        mine, other = vms["vm-00000"]["id"], vms["vm-00001"]["id"]
        token = await token_of(lab.app, "vm-viewer@example.test")
        query = "/vms?ndjson=true&watch=true&fields=name_label&since={}"
        # A view made after `since` does not know what the user saw then: 410.
        before = lab.app.objects.revision
        _rename(lab, other, "before the view")
        await _wait_name(lab, other, "before the view")
        gone = await lab.request("GET", query.format(before), token=token)
        assert gone.status == 410
        async with signed_in(lab.app, "vm-viewer@example.test"):  # keeps the view alive
            since = lab.app.objects.revision
            _rename(lab, other, "hidden")
            _rename(lab, mine, "seen")
            await _wait_name(lab, mine, "seen")
            await _wait_name(lab, other, "hidden")
            async with lab.http.get(
                lab.url(query.format(since)), cookies={"authenticationToken": token}
            ) as response:
                assert response.status == 200
                async with asyncio.timeout(5):  # the resumed lines, up to the revision
                    lines = [orjson.loads(await response.content.readline())]
                    while lines[-1][0] != "revision":
                        lines.append(orjson.loads(await response.content.readline()))
                href = f"/rest/v0/vms/{mine}"
                assert lines[:-1] == [["update", {"name_label": "seen", "href": href}]]
