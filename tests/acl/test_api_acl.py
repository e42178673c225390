"""acl.*, group.*, role.getAll and the user.* fields they touch, over a real socket."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.harness import Client, RpcError, connect, running_xod
from xod.server.app import XodApp
from xod.store import acl_id

ADMIN_ONLY = {"permission": "admin", "object": {}}


async def error_of(client: Client, method: str, params: dict[str, Any] | None = None) -> RpcError:
    with pytest.raises(RpcError) as raised:
        await client.call(method, params)
    return raised.value


@contextlib.asynccontextmanager
async def signed_in(app: XodApp, email: str, password: str = "pw") -> AsyncIterator[Client]:
    async with connect(app) as client:
        await client.sign_in(email, password)
        yield client


async def test_acls_as_terraform_uses_them(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        triple = {"subject": "user-1", "object": "vm-1", "action": "operator"}
        assert await admin.call("acl.add", triple) is True
        assert await admin.call("acl.add", triple) is True  # an existing triple: a no-op
        # acl.get takes no params, but extra keys are accepted (it has no schema).
        [acl] = await admin.call("acl.get", {"whatever": 1})
        assert acl == {"id": acl_id("user-1", "vm-1", "operator"), **triple}
        assert len(acl["id"]) == 6
        assert await admin.call("acl.remove", triple) is True
        assert await admin.call("acl.get") == []
        assert await admin.call("acl.remove", triple) is True  # gone already: still true
        # The same triple again: the same id (Terraform keeps it as the resource id).
        await admin.call("acl.add", triple)
        assert [a["id"] for a in await admin.call("acl.get")] == [acl["id"]]
        error = await error_of(admin, "acl.add", {"subject": "s", "object": "o"})
        assert error.code == 10


async def test_non_admins_are_refused_with_xo_data(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        await admin.call("user.create", {"email": "w", "password": "pw", "permission": "write"})
        refused = {
            "acl.get": None,
            "acl.add": {"subject": "s", "object": "o", "action": "viewer"},
            "acl.remove": {"subject": "s", "object": "o", "action": "viewer"},
            "group.create": {"name": "g"},
            "group.delete": {"id": "g"},
            "group.getAll": None,
            "group.set": {"id": "g", "name": "h"},
            "group.addUser": {"id": "g", "userId": "u"},
            "group.removeUser": {"id": "g", "userId": "u"},
            "group.setUsers": {"id": "g", "userIds": []},
            "user.getAll": None,
        }
        async with signed_in(app, "w") as writer:
            for method, params in refused.items():
                error = await error_of(writer, method, params)
                assert (error.code, error.data) == (2, ADMIN_ONLY), method
                assert error.error["message"] == "not enough permissions"
            # Open to any signed-in user.
            assert [r["id"] for r in await writer.call("role.getAll")] == [
                "viewer",
                "operator",
                "admin",
            ]
            assert await writer.call("acl.getCurrentPermissions") == {}
        async with connect(app) as anonymous:
            assert (await error_of(anonymous, "role.getAll")).code == 2


async def test_current_permissions_follow_acls_and_groups_at_once(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        ann = await admin.call("user.create", {"email": "ann", "password": "pw"})
        async with signed_in(app, "ann") as client:
            assert await client.call("acl.getCurrentPermissions") == {}
            await admin.call("acl.add", {"subject": ann, "object": "vm-1", "action": "viewer"})
            # The cached grants were dropped by the write: no stale answer.
            assert await client.call("acl.getCurrentPermissions") == {"vm-1": {"view": 1}}
            group = await admin.call("group.create", {"name": "ops"})
            await admin.call("acl.add", {"subject": group, "object": "pool", "action": "admin"})
            assert "pool" not in await client.call("acl.getCurrentPermissions")
            await admin.call("group.addUser", {"id": group, "userId": ann})
            assert await client.call("acl.getCurrentPermissions") == {
                "vm-1": {"view": 1},
                "pool": {"administrate": 1, "operate": 1, "view": 1},
            }
            # A raw permission as the action (legacy records) grants that permission.
            await admin.call("acl.add", {"subject": ann, "object": "vm-1", "action": "operate"})
            assert (await client.call("acl.getCurrentPermissions"))["vm-1"] == {
                "operate": 1,
                "view": 1,
            }
            await admin.call("group.removeUser", {"id": group, "userId": ann})
            assert "pool" not in await client.call("acl.getCurrentPermissions")
            await admin.call("group.setUsers", {"id": group, "userIds": [ann]})
            assert "pool" in await client.call("acl.getCurrentPermissions")
            await admin.call("acl.remove", {"subject": group, "object": "pool", "action": "admin"})
            assert "pool" not in await client.call("acl.getCurrentPermissions")


async def test_every_write_tells_access_whose_grants_changed(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        seen: list[frozenset[str] | None] = []
        app.services.access.subscribe(seen.append)
        ann = await admin.call("user.create", {"email": "ann", "password": "pw"})
        bob = await admin.call("user.create", {"email": "bob", "password": "pw"})
        group = await admin.call("group.create", {"name": "ops"})
        writes: list[tuple[str, dict[str, Any], set[str]]] = [
            ("group.setUsers", {"id": group, "userIds": [ann, bob]}, {ann, bob}),
            ("acl.add", {"subject": group, "object": "o", "action": "viewer"}, {ann, bob}),
            ("acl.remove", {"subject": group, "object": "o", "action": "viewer"}, {ann, bob}),
            ("acl.add", {"subject": ann, "object": "o", "action": "viewer"}, {ann}),
            ("group.removeUser", {"id": group, "userId": bob}, {bob}),
            ("group.addUser", {"id": group, "userId": bob}, {bob}),
            ("group.setUsers", {"id": group, "userIds": [bob]}, {ann}),
            ("user.set", {"id": ann, "permission": "user"}, {ann}),
            ("group.delete", {"id": group}, {bob}),
            ("user.delete", {"id": ann}, {ann}),
        ]
        for method, params, affected in writes:
            seen.clear()
            assert await admin.call(method, params) is True
            assert seen == [frozenset(affected)], method


async def test_groups(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        ann = await admin.call("user.create", {"email": "ann", "password": "pw"})
        bob = await admin.call("user.create", {"email": "bob", "password": "pw"})
        ops = await admin.call("group.create", {"name": "ops"})
        error = await error_of(admin, "group.create", {"name": "ops"})
        assert (error.code, error.data) == (16, {"objectId": "ops", "objectType": "group"})
        assert await admin.call("group.addUser", {"id": ops, "userId": ann}) is True
        assert await admin.call("group.getAll") == [{"id": ops, "name": "ops", "users": [ann]}]
        # Both sides of the membership show it.
        users = {u["email"]: u for u in await admin.call("user.getAll")}
        assert users["ann"]["groups"] == [ops] and users["bob"]["groups"] == []
        async with signed_in(app, "ann") as client:
            assert (await client.call("session.getUser"))["groups"] == [ops]

        assert await admin.call("group.set", {"id": ops, "name": "operators"}) is True
        assert await admin.call("group.set", {"id": ops}) is True
        await admin.call("group.setUsers", {"id": ops, "userIds": [bob, ann]})
        [group] = await admin.call("group.getAll")
        assert (group["name"], sorted(group["users"])) == ("operators", sorted([ann, bob]))

        # Unknown ids: code 1 with XO's message and data.
        for method, params, missing, kind in (
            ("group.delete", {"id": "nope"}, "nope", "group"),
            ("group.set", {"id": "nope", "name": "x"}, "nope", "group"),
            ("group.set", {"id": "nope"}, "nope", "group"),
            ("group.addUser", {"id": "nope", "userId": ann}, "nope", "group"),
            ("group.addUser", {"id": ops, "userId": "nobody"}, "nobody", "user"),
            ("group.removeUser", {"id": ops, "userId": "nobody"}, "nobody", "user"),
            ("group.setUsers", {"id": ops, "userIds": [ann, "nobody"]}, "nobody", "user"),
            ("group.setUsers", {"id": "nope", "userIds": []}, "nope", "group"),
        ):
            error = await error_of(admin, method, params)
            assert (error.code, error.data) == (1, {"id": missing, "type": kind}), method
            assert error.error["message"] == f"no such {kind} {missing}"
        error = await error_of(admin, "group.setUsers", {"id": ops, "userIds": "ann"})
        assert error.code == 10 and error.data["errors"][0]["instancePath"] == "/userIds"
        other = await admin.call("group.create", {"name": "other"})
        assert (await error_of(admin, "group.set", {"id": other, "name": "operators"})).code == 16

        # Deleting a user: its ACLs and memberships go; deleting a group: its ACLs and the
        # group id in its members.
        await admin.call("acl.add", {"subject": ann, "object": "vm", "action": "viewer"})
        await admin.call("acl.add", {"subject": ops, "object": "pool", "action": "viewer"})
        await admin.call("user.delete", {"id": ann})
        assert [a["subject"] for a in await admin.call("acl.get")] == [ops]
        groups = {g["id"]: g for g in await admin.call("group.getAll")}
        assert groups[ops]["users"] == [bob]
        assert await admin.call("group.delete", {"id": ops}) is True
        assert await admin.call("acl.get") == []
        users = {u["email"]: u for u in await admin.call("user.getAll")}
        assert users["bob"]["groups"] == []


async def test_the_user_level(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        user_id = await admin.call(
            "user.create", {"email": "u", "password": "pw", "permission": "user"}
        )
        async with signed_in(app, "u") as client:
            me = await client.call("session.getUser")
            assert (me["id"], me["permission"], me["groups"]) == (user_id, "user", [])
            # Ranks like `none` for method-level checks.
            assert (await error_of(client, "user.getAll")).code == 2
        await admin.call("user.set", {"id": user_id, "permission": "read"})
        await admin.call("user.set", {"id": user_id, "permission": "user"})
        users = {u["email"]: u for u in await admin.call("user.getAll")}
        assert users["u"]["permission"] == "user"


async def test_methods_are_published_with_their_schemas(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as client:
        info = await client.call("system.getMethodsInfo")
        assert info["acl.add"]["permission"] == "admin"
        assert set(info["acl.add"]["params"]) == {"subject", "object", "action"}
        assert "permission" not in info["acl.getCurrentPermissions"]  # any signed-in user
        assert info["group.setUsers"]["params"] == {"id": {"type": "string"}, "userIds": {}}
        assert "permission" not in info["role.getAll"]
        assert info["resourceSet.addLimit"]["params"]["quantity"] == {"type": "integer"}
        assert "permission" not in info["resourceSet.getAll"]
        for name in (
            "acl.get",
            "acl.remove",
            "group.create",
            "group.delete",
            "group.set",
            "group.addUser",
            "group.removeUser",
            "group.getAll",
            "resourceSet.create",
            "resourceSet.delete",
            "resourceSet.set",
            "resourceSet.addObject",
            "resourceSet.removeObject",
            "resourceSet.addSubject",
            "resourceSet.removeSubject",
            "resourceSet.removeLimit",
            "resourceSet.recomputeAllLimits",
        ):
            assert info[name]["permission"] == "admin", name
        assert "permission" not in info["resourceSet.get"]
