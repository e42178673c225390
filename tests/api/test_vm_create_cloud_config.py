"""cloudConfig.*: stored cloud-init templates through xod's JSON-RPC API (admins write, anyone
signed in reads), kept in the state database across restarts; the schema migration that adds
them keeps an existing database's data; vm.getCloudInitConfig, the pool's proposal for a
template."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.api.harness import RpcError, connect, running_xod
from tests.api.test_commands_support import commands_env
from tests.api.test_vm_create_support import error_of
from xod.store import SCHEMA_VERSION, Database
from xod.store.database import MIGRATIONS

USER_DATA = "#cloud-config\nhostname: {name}\nssh_authorized_keys:\n  - ssh-ed25519 AAAA test\n"
NETWORK = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"


async def test_cloud_configs_crud_and_persistence(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        assert await admin.call("cloudConfig.getAll", {"dummy": "dummy"}) == []
        created = await admin.call("cloudConfig.create", {"name": "base", "template": USER_DATA})
        assert created == {"id": created["id"], "name": "base", "template": USER_DATA}
        network = await admin.call(
            "cloudConfig.createNetworkConfig", {"name": "dhcp", "template": NETWORK}
        )
        assert network["type"] == "network"
        # The two kinds are listed apart, templates verbatim.
        assert await admin.call("cloudConfig.getAll") == [created]
        assert await admin.call("cloudConfig.getAllNetworkConfigs") == [network]
        assert await admin.call("cloudConfig.update", {"id": created["id"], "name": "web"}) is True
        [updated] = await admin.call("cloudConfig.getAll")
        assert (updated["name"], updated["template"]) == ("web", USER_DATA)
        await admin.call("cloudConfig.update", {"id": created["id"], "template": "#cloud-config\n"})
        [updated] = await admin.call("cloudConfig.getAll")
        assert updated["template"] == "#cloud-config\n"
        # Unknown ids: update says so (XO's code 1), delete does not.
        with pytest.raises(RpcError) as raised:
            await admin.call("cloudConfig.update", {"id": "nope", "name": "x"})
        assert (raised.value.code, raised.value.error["message"]) == (
            1,
            "no such cloud config nope",
        )
        assert await admin.call("cloudConfig.delete", {"id": "nope"}) is True
        # Invalid params.
        for method, params in (
            ("cloudConfig.create", {"name": "x"}),
            ("cloudConfig.create", {"name": "", "template": "t"}),
            ("cloudConfig.create", {"name": "x", "template": "t", "type": "network"}),
            ("cloudConfig.update", {"name": "x"}),
            ("cloudConfig.delete", {}),
        ):
            with pytest.raises(RpcError) as raised:
                await admin.call(method, params)
            assert raised.value.code == 10, (method, params)
        # Readers read; only admins write.
        await admin.call(
            "user.create", {"email": "r@x.test", "password": "pw", "permission": "read"}
        )
        async with connect(app) as reader:
            await reader.sign_in("r@x.test", "pw")
            assert await reader.call("cloudConfig.getAll") == [updated]
            for method, params in (
                ("cloudConfig.create", {"name": "x", "template": "t"}),
                ("cloudConfig.update", {"id": created["id"], "name": "x"}),
                ("cloudConfig.delete", {"id": created["id"]}),
            ):
                with pytest.raises(RpcError) as raised:
                    await reader.call(method, params)
                assert raised.value.code == 2, method
    # Kept across a restart; deleted for good.
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        assert await admin.call("cloudConfig.getAll") == [updated]
        assert await admin.call("cloudConfig.delete", {"id": created["id"]}) is True
        assert await admin.call("cloudConfig.getAll") == []
        assert await admin.call("cloudConfig.getAllNetworkConfigs") == [network]


def test_migration_keeps_an_older_database(tmp_path: Path) -> None:
    """A database written before cloud configs (schema 1) gains the table, users kept."""
    path = tmp_path / "old.sqlite3"
    connection = sqlite3.connect(path)
    connection.executescript(MIGRATIONS[0])
    connection.execute(
        "INSERT INTO users (id, email, permission, created_at) VALUES ('u1', 'a@x', 'admin', 0)"
    )
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()
    database = Database(path)
    assert database.schema_version == SCHEMA_VERSION
    assert [row["email"] for row in database.query("SELECT email FROM users")] == ["a@x"]
    assert database.query("SELECT count(*) AS n FROM cloud_configs")[0]["n"] == 0
    database.close()


async def test_get_cloud_init_config(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        template = min(env.app.objects.by_type("VM-template").values(), key=lambda t: t["id"])
        config = await env.client.call("vm.getCloudInitConfig", {"template": template["id"]})
        assert config.startswith("#cloud-config\n") and "%XSVMNAMETOHOSTNAME%" in config
        # XAPI's refusal (the plugin runs on the master, which is offline) as XO's code 18.
        db = env.sim.pool.db
        master = db.get("host", env.sim.pool.master)
        db.update("host_metrics", master["metrics"], {"live": False})
        error = await error_of(env, "vm.getCloudInitConfig", {"template": template["id"]})
        assert error.code == 18
        db.update("host_metrics", master["metrics"], {"live": True})
        # Not a template; invalid params.
        vm_id = (await env.vm_in_state("Halted"))["id"]
        error = await error_of(env, "vm.getCloudInitConfig", {"template": vm_id})
        assert (error.code, error.error["data"]["type"]) == (1, "VM-template")
        assert (await error_of(env, "vm.getCloudInitConfig", {})).code == 10
        assert (await error_of(env, "vm.getCloudInitConfig", {"id": template["id"]})).code == 10
