"""resourceSet.* over a real socket; deletion and recomputation against the simulator, whose
VMs join a set the way xo-server marks them (other_config["xo:resource_set"], a JSON string)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.acl.test_api_acl import ADMIN_ONLY, error_of, signed_in
from tests.api.harness import connect, running_xod
from tests.api.test_commands_support import Env, commands_env
from tests.api.test_vm_create_support import cache_shows, cached, xenapi
from xod.api.methods.resource_set import vm_resources_usage


async def test_resource_sets_as_the_go_sdk_uses_them(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        created = await admin.call(
            "resourceSet.create",
            {
                "name": "sandbox",
                "subjects": ["u1"],
                "objects": ["tpl"],
                "limits": {"cpus": {"available": 4, "total": 4}, "memory": 1024},
            },
        )
        set_id = created["id"]
        assert len(set_id) == 8
        assert created == {
            "id": set_id,
            "name": "sandbox",
            "subjects": ["u1"],
            "objects": ["tpl"],
            "ipPools": [],
            "tags": [],
            "shareByDefault": False,
            "limits": {
                "cpus": {"available": 4, "total": 4, "usage": 0},
                "memory": {"total": 1024, "usage": 0},
            },
        }
        assert await admin.call("resourceSet.get", {"id": set_id}) == created
        # getAll with a dummy id (the Go SDK sends one): accepted.
        assert await admin.call("resourceSet.getAll", {"id": "dummy"}) == [created]
        for method, params in (
            ("resourceSet.addSubject", {"id": set_id, "subject": "g1"}),
            ("resourceSet.removeSubject", {"id": set_id, "subject": "u1"}),
            ("resourceSet.addObject", {"id": set_id, "object": "sr"}),
            ("resourceSet.addObject", {"id": set_id, "object": "sr"}),  # no dedup, as XO
            ("resourceSet.removeObject", {"id": set_id, "object": "tpl"}),
            ("resourceSet.addLimit", {"id": set_id, "limitId": "disk", "quantity": 100}),
            ("resourceSet.removeLimit", {"id": set_id, "limitId": "memory"}),
        ):
            assert await admin.call(method, params) is True, method
        got = await admin.call("resourceSet.get", {"id": set_id})
        assert (got["subjects"], got["objects"]) == (["g1"], ["sr", "sr"])
        assert got["limits"] == {
            "cpus": {"available": 4, "total": 4, "usage": 0},
            "disk": {"total": 100, "usage": 0},
        }
        assert await admin.call("resourceSet.delete", {"id": set_id}) is True
        assert await admin.call("resourceSet.getAll") == []


async def test_set_and_the_usage_it_keeps(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        set_id = (await admin.call("resourceSet.create", {"name": "s", "limits": {"cpus": 8}}))[
            "id"
        ]
        app.services.store.resource_sets.allocate({"cpus": 3}, set_id, force=False)
        assert (
            await admin.call(
                "resourceSet.set",
                {
                    "id": set_id,
                    "name": "renamed",
                    "shareByDefault": True,
                    "tags": ["self-service"],
                    "ipPools": ["p"],
                    "limits": {"cpus": 16, "vms": 2},
                },
            )
            is True
        )
        got = await admin.call("resourceSet.get", {"id": set_id})
        assert (got["name"], got["shareByDefault"], got["tags"], got["ipPools"]) == (
            "renamed",
            True,
            ["self-service"],
            ["p"],
        )
        assert got["limits"] == {"cpus": {"total": 16, "usage": 3}, "vms": {"total": 2, "usage": 0}}
        # addLimit stores the bare quantity: the usage starts over, as XO.
        await admin.call("resourceSet.addLimit", {"id": set_id, "limitId": "cpus", "quantity": 4})
        got = await admin.call("resourceSet.get", {"id": set_id})
        assert got["limits"]["cpus"] == {"total": 4, "usage": 0}
        error = await error_of(admin, "resourceSet.set", {"id": set_id, "limits": {"cpus": "x"}})
        assert error.code == 10


async def test_who_sees_which_sets_and_errors(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        ann = await admin.call("user.create", {"email": "ann", "password": "pw"})
        await admin.call("user.create", {"email": "w", "password": "pw", "permission": "write"})
        ops = await admin.call("group.create", {"name": "ops"})
        await admin.call("group.addUser", {"id": ops, "userId": ann})
        mine = await admin.call("resourceSet.create", {"name": "mine", "subjects": [ann]})
        await admin.call("resourceSet.create", {"name": "ours", "subjects": [ops]})
        theirs = await admin.call("resourceSet.create", {"name": "theirs", "subjects": ["x"]})
        async with signed_in(app, "ann") as client:
            assert [s["name"] for s in await client.call("resourceSet.getAll")] == [
                "mine",
                "ours",
            ]
            # get does not check membership (as XO).
            assert (await client.call("resourceSet.get", {"id": theirs["id"]}))["name"] == "theirs"
            # Leaving the group: its set is gone from the list at once.
            await admin.call("group.removeUser", {"id": ops, "userId": ann})
            assert [s["id"] for s in await client.call("resourceSet.getAll")] == [mine["id"]]
            for method, params in (
                ("resourceSet.create", {"name": "x"}),
                ("resourceSet.delete", {"id": mine["id"]}),
                ("resourceSet.set", {"id": mine["id"], "name": "y"}),
                ("resourceSet.addObject", {"id": mine["id"], "object": "o"}),
                ("resourceSet.removeObject", {"id": mine["id"], "object": "o"}),
                ("resourceSet.addSubject", {"id": mine["id"], "subject": "s"}),
                ("resourceSet.removeSubject", {"id": mine["id"], "subject": "s"}),
                ("resourceSet.addLimit", {"id": mine["id"], "limitId": "l", "quantity": 1}),
                ("resourceSet.removeLimit", {"id": mine["id"], "limitId": "l"}),
                ("resourceSet.recomputeAllLimits", None),
            ):
                error = await error_of(client, method, params)
                assert (error.code, error.data) == (2, ADMIN_ONLY), method
        # A write-level user is not an admin: it sees the sets it is a subject of only.
        async with signed_in(app, "w") as writer:
            assert await writer.call("resourceSet.getAll") == []
        assert len(await admin.call("resourceSet.getAll")) == 3
        for method, params in (
            ("resourceSet.get", {"id": "nope"}),
            ("resourceSet.delete", {"id": "nope"}),
            ("resourceSet.set", {"id": "nope", "name": "x"}),
            ("resourceSet.addObject", {"id": "nope", "object": "o"}),
            ("resourceSet.removeSubject", {"id": "nope", "subject": "s"}),
            ("resourceSet.addLimit", {"id": "nope", "limitId": "l", "quantity": 1}),
            ("resourceSet.removeLimit", {"id": "nope", "limitId": "l"}),
        ):
            error = await error_of(admin, method, params)
            assert (error.code, error.data) == (1, {"id": "nope", "type": "resourceSet"})
            assert error.error["message"] == "no such resourceSet nope"


async def join_set(env: Env, vm_id: str, set_id: str) -> None:
    """Mark a VM as in `set_id`, as xo-server does, and wait for the cache to show it."""
    uuid = cached(env, vm_id)["uuid"]

    def mark(api: Any) -> None:
        ref = api.VM.get_by_uuid(uuid)
        api.VM.add_to_other_config(ref, "xo:resource_set", f'"{set_id}"')

    await xenapi(env, mark)
    await cache_shows(
        env, f"{vm_id} in {set_id}", lambda: cached(env, vm_id).get("resourceSet") == set_id
    )


async def test_recompute_counts_the_vms_of_each_set(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        admin = env.client
        a = await admin.call(
            "resourceSet.create",
            {"name": "a", "limits": {"cpus": 100, "memory": 2**40, "vms": 10, "disk": 2**50}},
        )
        b = await admin.call("resourceSet.create", {"name": "b", "limits": {"vms": 10}})
        vms = sorted(env.app.objects.by_type("VM"))[:3]
        for vm_id in vms[:2]:
            await join_set(env, vm_id, a["id"])
        await join_set(env, vms[2], b["id"])
        # Usage drifted (say a crash between a charge and its VM): recompute sets it right.
        env.app.services.store.resource_sets.allocate({"vms": 7}, b["id"], force=False)
        assert await admin.call("resourceSet.recomputeAllLimits") is True
        expected: dict[str, int] = {}
        for vm_id in vms[:2]:
            for key, value in vm_resources_usage(cached(env, vm_id), env.app.objects.get).items():
                expected[key] = expected.get(key, 0) + value
        limits = (await admin.call("resourceSet.get", {"id": a["id"]}))["limits"]
        assert {key: limit["usage"] for key, limit in limits.items()} == {
            key: expected[key] for key in ("cpus", "memory", "vms", "disk")
        }
        assert expected["vms"] == 2 and expected["cpus"] > 0 and expected["memory"] > 0
        limits = (await admin.call("resourceSet.get", {"id": b["id"]}))["limits"]
        assert limits == {"vms": {"total": 10, "usage": 1}}


async def test_deleting_a_set_takes_its_vms_out_and_their_acls(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        admin = env.client
        ann = await admin.call("user.create", {"email": "ann", "password": "pw"})
        rs = await admin.call("resourceSet.create", {"name": "a", "subjects": [ann]})
        in_set, outside = sorted(env.app.objects.by_type("VM"))[:2]
        await join_set(env, in_set, rs["id"])
        await admin.call("acl.add", {"subject": ann, "object": in_set, "action": "admin"})
        await admin.call("acl.add", {"subject": ann, "object": outside, "action": "admin"})

        # Taking a subject out of the set: it loses its ACLs on the set's VMs only.
        await admin.call("resourceSet.set", {"id": rs["id"], "subjects": []})
        assert [a["object"] for a in await admin.call("acl.get")] == [outside]
        await admin.call("resourceSet.set", {"id": rs["id"], "subjects": [ann]})
        await admin.call("acl.add", {"subject": ann, "object": in_set, "action": "admin"})

        assert await admin.call("resourceSet.delete", {"id": rs["id"]}) is True
        # Answered once done: the VM is out of the set on the pool and in the cache (a read on
        # the same connection waits for its writes).
        vm = (await admin.call("xo.getAllObjects", {"filter": {"id": in_set}}))[in_set]
        assert "resourceSet" not in vm
        assert "xo:resource_set" not in env.sim_record("VM", vm["uuid"])["other_config"]
        assert [a["object"] for a in await admin.call("acl.get")] == [outside]
        assert (await error_of(admin, "resourceSet.get", {"id": rs["id"]})).code == 1


async def test_resource_set_writes_tell_access_whose_view_changed(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        seen: list[frozenset[str] | None] = []
        app.services.access.subscribe(seen.append)
        ann = await admin.call("user.create", {"email": "ann", "password": "pw"})
        bob = await admin.call("user.create", {"email": "bob", "password": "pw"})
        ops = await admin.call("group.create", {"name": "ops"})
        await admin.call("group.addUser", {"id": ops, "userId": bob})
        seen.clear()
        created = await admin.call("resourceSet.create", {"name": "s", "subjects": [ann]})
        assert seen == [frozenset({ann})]
        set_id = created["id"]
        writes: list[tuple[str, dict[str, Any], set[str] | None]] = [
            ("resourceSet.addSubject", {"id": set_id, "subject": ops}, {bob}),
            ("resourceSet.addObject", {"id": set_id, "object": "sr"}, {ann, bob}),
            ("resourceSet.removeObject", {"id": set_id, "object": "sr"}, {ann, bob}),
            ("resourceSet.removeSubject", {"id": set_id, "subject": ann}, {ann}),
            ("resourceSet.set", {"id": set_id, "subjects": [ann]}, {ann, bob}),
            # Quotas change nobody's view.
            ("resourceSet.addLimit", {"id": set_id, "limitId": "vms", "quantity": 1}, None),
            ("resourceSet.set", {"id": set_id, "name": "t"}, None),
            ("resourceSet.delete", {"id": set_id}, {ann}),
        ]
        for method, params, affected in writes:
            seen.clear()
            assert await admin.call(method, params) is True
            assert seen == ([] if affected is None else [frozenset(affected)]), method
