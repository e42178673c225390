"""session/token/user/server/xo methods over a real socket, against the simulator."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD, Client, RpcError, connect, running_xod
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator
from xod.store import DATABASE_NAME


async def _wait_connected(client: Client, server_id: str) -> dict:
    for _ in range(200):
        servers = {s["id"]: s for s in await client.call("server.getAll")}
        if servers[server_id]["status"] == "connected":
            return servers[server_id]
        await asyncio.sleep(0.05)
    raise AssertionError(f"server never connected: {servers[server_id]}")


async def test_sign_in_tokens_users_and_permissions(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        user = await admin.call(
            "session.signIn", {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert user["email"] == ADMIN_EMAIL and user["permission"] == "admin"
        assert "password" not in orjson.dumps(user).decode()
        assert await admin.call("session.getUser") == user

        # token.create: a bare string; the same client id refreshes the same record.
        first = await admin.call("token.create", {"client": {"id": "cli-1"}, "description": "a"})
        second = await admin.call("token.create", {"client": {"id": "cli-1"}, "description": "b"})
        assert isinstance(first, str) and len(first) >= 40
        tokens = await admin.call("user.getAuthenticationTokens")
        assert [(t["client"], t["description"]) for t in tokens] == [({"id": "cli-1"}, "b")]
        with pytest.raises(RpcError) as raised:
            await admin.call("token.create", {"expiresIn": "1 second"})
        assert raised.value.code == 10

        async with connect(app) as by_token:
            assert (await by_token.call("session.signIn", {"token": second}))["id"] == user["id"]
            with pytest.raises(RpcError) as raised:
                await by_token.call("session.signIn", {"token": first})
            assert raised.value.code == 3
        await admin.call("token.deleteOwn", {"tokens": [tokens[0]["id"]]})
        assert await admin.call("user.getAuthenticationTokens") == []

        # Users: create, list, change permission; changes apply to a live session at once.
        writer_id = await admin.call(
            "user.create", {"email": "w@x.test", "password": "pw-w", "permission": "write"}
        )
        with pytest.raises(RpcError) as raised:
            await admin.call("user.create", {"email": "w@x.test", "password": "pw"})
        assert raised.value.code == 16
        listed = await admin.call("user.getAll")
        assert {u["email"] for u in listed} == {ADMIN_EMAIL, "w@x.test"}
        assert all("password" not in u and "password_hash" not in u for u in listed)
        async with connect(app) as writer:
            await writer.sign_in("w@x.test", "pw-w")
            assert await writer.call("xo.getAllObjects") == {}
            await admin.call("user.set", {"id": writer_id, "permission": "none"})
            assert (await writer.call("session.getUser"))["permission"] == "none"
            await admin.call("user.delete", {"id": writer_id})
            with pytest.raises(RpcError) as raised:
                await writer.call("xo.getAllObjects")
            assert raised.value.code == 2
        with pytest.raises(RpcError) as raised:
            await admin.call("user.delete", {"id": user["id"]})
        assert raised.value.code == 10

        # Wrong password → code 3; an immediate retry of the same account is throttled.
        async with connect(app) as guesser:
            with pytest.raises(RpcError) as raised:
                await guesser.sign_in(ADMIN_EMAIL, "nope")
            assert raised.value.code == 3
            with pytest.raises(RpcError) as raised:
                await guesser.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
            wait = raised.value.data["retryAfter"]  # 2 s from the failure, rounded up
            assert wait in (1, 2)
            message = raised.value.error["message"]
            assert message == f"too fast authentication tries: retry in {wait} s"

    mode = stat.S_IMODE(os.stat(tmp_path / DATABASE_NAME).st_mode)
    assert mode == 0o600


async def test_servers_objects_and_persistence(tmp_path: Path) -> None:
    async with Simulator(SimConfig(hosts=2, vms=12, templates=4, seed=1)) as sim:
        async with running_xod(tmp_path) as app, connect(app) as client:
            await client.sign_in()
            server_id = await client.call(
                "server.add",
                {
                    "host": sim.master_url,
                    "username": "root",
                    "password": "password",
                    "label": "lab",
                },
            )
            with pytest.raises(RpcError) as raised:
                await client.call(
                    "server.add",
                    {"host": sim.master_url, "username": "root", "password": "password"},
                )
            assert raised.value.code == 16
            server = await _wait_connected(client, server_id)
            assert server["label"] == "lab" and "password" not in server
            assert server["poolId"] and server["master"]

            everything = await client.call("xo.getAllObjects")
            assert len(everything) == len(app.objects)
            assert all(obj["id"] == key for key, obj in everything.items())
            vms = await client.call("xo.getAllObjects", {"filter": {"type": "VM"}})
            assert vms and all(o["type"] == "VM" for o in vms.values())
            running = await client.call(
                "xo.getAllObjects", {"filter": "type:VM power_state:Running"}
            )
            # complex-matcher strings match substrings, case-insensitively (VM-controller too).
            assert running == {
                k: o
                for k, o in everything.items()
                if "vm" in o["type"].lower() and "running" in str(o.get("power_state")).lower()
            }
            assert any(o["type"] == "VM-controller" for o in running.values())
            assert len(await client.call("xo.getAllObjects", {"limit": 3})) == 3
            with pytest.raises(RpcError) as raised:
                await client.call("xo.getAllObjects", {"filter": "type:(VM"})
            assert raised.value.code == 10

            # NDJSON: a one-shot URL streaming one object per line.
            get_from = (
                await client.call("xo.getAllObjects", {"ndjson": True, "filter": {"type": "VM"}})
            )["$getFrom"]
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{app.url}{get_from}") as response:
                    assert response.status == 200
                    body = await response.read()
                async with http.get(f"{app.url}{get_from}") as again:
                    assert again.status == 404
            lines = [orjson.loads(line) for line in body.splitlines()]
            assert {o["id"]: o for o in lines} == vms

            await client.call("server.disable", {"id": server_id})
            assert (await client.call("server.getAll"))[0]["status"] == "disconnected"
            assert await client.call("xo.getAllObjects") == {}
            assert await client.call("server.enable", {"server": server_id}) is True
            with pytest.raises(RpcError) as raised:
                await client.call("server.enable", {"id": server_id})
            assert raised.value.code == 25
            with pytest.raises(RpcError) as raised:
                await client.call("server.set", {"id": server_id, "host": "elsewhere"})
            assert raised.value.code == 5
            assert await client.call("server.set", {"id": server_id, "label": "renamed"})

        # A restart reconnects the enabled server from the database.
        async with running_xod(tmp_path) as app, connect(app) as client:
            await client.sign_in()
            server = await _wait_connected(client, server_id)
            assert server["label"] == "renamed"
            assert len(await client.call("xo.getAllObjects", {"filter": {"type": "VM"}})) == len(
                vms
            )
            assert await client.call("server.remove", {"id": server_id}) is True
            assert await client.call("server.getAll") == []
            assert await client.call("xo.getAllObjects") == {}


async def test_permission_levels_are_checked_by_the_schema(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as admin:
        await admin.sign_in()
        for method, params in (
            ("user.create", {"email": "p@x.test", "password": "pw", "permission": "root"}),
            ("user.set", {"id": "whoever", "permission": "root"}),
        ):
            with pytest.raises(RpcError) as raised:
                await admin.call(method, params)
            assert raised.value.code == 10
            [problem] = raised.value.data["errors"]
            assert (problem["instancePath"], problem["keyword"]) == ("/permission", "enum")
            assert problem["params"] == {
                "allowedValues": ["none", "user", "read", "write", "admin"]
            }
