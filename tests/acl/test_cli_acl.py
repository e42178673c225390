"""xod-cli (a subprocess) lists and calls the acl/group/role/resourceSet methods like any other:
they are published with their params, and typed from them."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.cli.helpers import lab


async def test_xod_cli_manages_groups_and_acls(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        await env.register()
        listed = await env.cli("list-commands", "{acl,group,role}.*")
        assert listed.code == 0, listed
        lines = listed.stdout.splitlines()
        assert "acl.add subject=<string> object=<string> action=<string>" in lines
        assert "group.addUser id=<string> userId=<string>" in lines
        names = {line.split()[0] for line in lines if not line.startswith(" ")}
        assert {"acl.getCurrentPermissions", "group.setUsers", "role.getAll"} <= names

        user_id = await env.client.call("user.create", {"email": "ann", "password": "pw"})
        created = await env.cli("group.create", "name=ops")
        assert created.code == 0, created
        group_id = created.json()
        members = "userIds=json:" + orjson.dumps([user_id]).decode()
        added = await env.cli("group.setUsers", f"id={group_id}", members)
        assert (added.code, added.json()) == (0, True), added
        granted = await env.cli("acl.add", f"subject={group_id}", "object=pool-1", "action=viewer")
        assert (granted.code, granted.json()) == (0, True), granted
        acls = (await env.cli("acl.get")).json()
        assert [(a["subject"], a["object"], a["action"]) for a in acls] == [
            (group_id, "pool-1", "viewer")
        ]
        groups = (await env.cli("group.getAll")).json()
        assert groups == [{"id": group_id, "name": "ops", "users": [user_id]}]
        # docs/protocol.md's example.
        sandbox = await env.cli(
            "resourceSet.create",
            "name=sandbox",
            "subjects=json:" + orjson.dumps([user_id]).decode(),
            'limits=json:{"cpus":8}',
        )
        assert sandbox.code == 0, sandbox
        assert sandbox.json()["limits"] == {"cpus": {"total": 8, "usage": 0}}
        assert sandbox.json()["subjects"] == [user_id]
        refused = await env.cli("group.create", "name=ops")
        assert refused.code != 0 and "group already exists" in refused.stderr
