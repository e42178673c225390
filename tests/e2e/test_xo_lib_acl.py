"""The real Xen Orchestra client library (npm `xo-lib`) manages users, groups, ACLs and resource
sets the way Terraform's Go SDK does, against xod and the simulator.

Needs `npm install --prefix tests/js` (done by .ci/run)."""

from __future__ import annotations

from pathlib import Path

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.api.test_commands_support import commands_env
from tests.e2e.node import run_node_script
from xod.store import acl_id


async def test_xo_lib_manages_acls_like_terraform(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        report = await run_node_script(
            "xo_lib_acl.mjs", env.app.url, ADMIN_EMAIL, ADMIN_PASSWORD, vm_id
        )
    assert report["ok"], report

    users = {user["email"]: user for user in report["users"]}
    user_id = users["tf-user"]["id"]
    [group] = report["groups"]
    assert users["tf-user"]["groups"] == [group["id"]] and group["users"] == [user_id]
    assert report["addUser"] is True
    assert report["duplicateGroup"]["code"] == 16
    assert report["duplicateGroup"]["data"] == {"objectId": "tf-group", "objectType": "group"}

    # acl.add answers true; the record found by its triple has an id stable for that triple.
    assert report["add"] is True and report["add2"] is True
    [acl] = report["found"]
    assert acl == {
        "id": acl_id(user_id, vm_id, "operator"),
        "subject": user_id,
        "object": vm_id,
        "action": "operator",
    }
    assert report["foundAgain"] == [acl]

    # The user's own view: its ACL and its group's, merged per object.
    assert report["permissions"] == {vm_id: {"operate": 1, "view": 1}}
    [user_set] = report["userSets"]
    assert user_set["name"] == "tf-set"
    assert user_set["limits"] == {"cpus": {"available": 4, "total": 4, "usage": 0}}
    assert [role["id"] for role in report["roles"]] == ["viewer", "operator", "admin"]
    assert report["userAclGet"]["code"] == 2
    assert report["userAclGet"]["data"] == {"permission": "admin", "object": {}}

    # acl.remove answers true, also for a triple already gone; deleting the user drops its ACLs.
    assert report["remove"] is True and report["removeAgain"] is True
    assert report["afterRemove"] == []
    assert report["deleteUser"] is True
    assert [a["subject"] for a in report["aclsLeft"]] == [group["id"]]
