"""The real xod-cli, as a subprocess, against xod and the simulator: the happy paths."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.cli.helpers import ENTRY_POINT, lab


async def test_register_list_commands_and_unregister(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        # The installed console script, with the password prompted for (read from stdin when
        # stdin is not a terminal).
        registered = await env.cli(
            "register",
            env.url,
            ADMIN_EMAIL,
            program=[ENTRY_POINT],
            stdin=b"%s\n" % ADMIN_PASSWORD.encode(),
        )
        assert registered.code == 0, registered
        assert f"registered as {ADMIN_EMAIL} on {env.url}" in registered.stdout
        assert stat.S_IMODE(os.stat(env.config_file).st_mode) == 0o600
        config = orjson.loads(env.config_file.read_bytes())
        assert config["server"] == env.url and config["clientId"] and config["token"]
        tokens = await env.client.call("user.getAuthenticationTokens")
        assert [t["client"] for t in tokens] == [{"id": config["clientId"]}]
        assert tokens[0]["description"].startswith("xod-cli@")
        assert config["expiresAt"] == tokens[0]["expiration"]

        # Registering again refreshes the same token record (same client id), not a new one.
        again = await env.cli(
            "register", "--expiresIn", "2 days", env.url, ADMIN_EMAIL, ADMIN_PASSWORD
        )
        assert again.code == 0, again
        tokens = await env.client.call("user.getAuthenticationTokens")
        assert len(tokens) == 1
        assert orjson.loads(env.config_file.read_bytes())["clientId"] == config["clientId"]

        listed = await env.cli("list-commands", "xo.*", "vm.st*")
        assert listed.code == 0, listed
        lines = listed.stdout.splitlines()
        assert lines[:2] == [
            "vm.start id=<string> [host=<string>] [force=<boolean>]"
            " [bypassMacAddressesCheck=<boolean>]",
            "  Start a VM (a paused VM is unpaused, a suspended one resumed)",
        ]
        assert (
            "xo.getAllObjects [filter=<object|string>] [limit=<number>] [ndjson=<boolean>]" in lines
        )
        names = [line.split()[0] for line in lines if not line.startswith(" ")]
        assert names == sorted(names) and set(names) >= {"vm.start", "vm.stop", "xo.getAllObjects"}
        assert all(n.startswith(("xo.", "vm.st")) for n in names)

        as_json = await env.cli("list-commands", "--json", "{token,session}.*")
        everything = await env.client.call("system.getMethodsInfo")
        assert as_json.json() == {
            n: info for n, info in everything.items() if n.startswith(("token.", "session."))
        }

        created = await env.cli("create-token", "--expiresIn", "3600000")
        assert created.code == 0, created
        token = created.stdout.strip()
        assert len(token) >= 40 and token != config["token"]

        gone = await env.cli("unregister")
        assert gone.code == 0 and f"unregistered from {env.url}" in gone.stdout
        left = orjson.loads(env.config_file.read_bytes())
        assert (
            "token" not in left and "server" not in left and left["clientId"] == config["clientId"]
        )
        tokens = await env.client.call("user.getAuthenticationTokens")
        assert [t["description"] for t in tokens] == ["xod-cli create-token"]
        assert (await env.cli("list-commands")).code == 3


async def test_list_objects_with_fields_and_filters(tmp_path: Path) -> None:
    async with lab(tmp_path, vms=6) as env:
        await env.register()
        everything = await env.client.call("xo.getAllObjects")

        running = await env.cli(
            "list-objects", "--name_label", "--power_state", "type=VM", "power_state=Running"
        )
        assert running.code == 0, running
        expected = [
            {"name_label": o["name_label"], "power_state": "Running"}
            for o in everything.values()
            if o["type"] == "VM" and o["power_state"] == "Running"
        ]
        assert expected and running.json() == expected

        hosts = await env.cli("list-objects", "--filter", "type:host", "--id", "--cpus.cores")
        assert hosts.json() == [
            {"id": o["id"], "cpus": {"cores": o["cpus"]["cores"]}}
            for o in everything.values()
            if "host" in o["type"].lower()
        ]

        # A complex-matcher expression and an exact filter object together, and a limit.
        both = await env.cli("list-objects", "--filter", "type:VM", "power_state=Halted", "--id")
        assert both.json() == [
            {"id": o["id"]}
            for o in everything.values()
            if "vm" in o["type"].lower() and o.get("power_state") == "Halted"
        ]
        limited = await env.cli("list-objects", "--limit", "2", "type=VM")
        assert len(limited.json()) == 2 and all(o["type"] == "VM" for o in limited.json())

        whole = await env.cli("list-objects")
        assert {o["id"]: o for o in whole.json()} == everything
        none = await env.cli("list-objects", "type=nothing-like-this")
        assert none.code == 0 and none.json() == []


async def test_method_calls_downloads_and_actions(tmp_path: Path) -> None:
    async with lab(tmp_path, op_duration=0.2) as env:
        await env.register()
        version = await env.cli("system.getServerVersion")
        assert version.code == 0 and version.json() == await env.client.call(
            "system.getServerVersion"
        )
        assert version.stderr == ""

        # `$getFrom`: the NDJSON export saved to the `@` file.
        export = tmp_path / "pools.ndjson"
        saved = await env.cli(
            "xo.getAllObjects", "ndjson=true", 'filter=json:{"type":"pool"}', f"@={export}"
        )
        assert saved.code == 0, saved
        pools = [orjson.loads(line) for line in export.read_bytes().splitlines()]
        expected = await env.client.call("xo.getAllObjects", {"filter": {"type": "pool"}})
        assert {p["id"]: p for p in pools} == expected

        vms = await env.client.call("xo.getAllObjects", {"filter": {"type": "VM"}})
        halted = next(o for o in vms.values() if o["power_state"] == "Halted")
        # Typed values: `name=123` stays a string for a string param, full_copy a boolean.
        cloned = await env.cli("vm.clone", f"id={halted['id']}", "name=123", "full_copy=false")
        assert cloned.code == 0, cloned
        clone_id = cloned.json()
        clone = await env.client.call("xo.getAllObjects", {"filter": {"id": clone_id}})
        assert clone[clone_id]["name_label"] == "123"

        # An action, no bar: stdout is the bare result (piped here; --no-progress anyway).
        started = await env.cli("vm.start", f"id={halted['id']}", "--no-progress")
        assert (started.code, started.json(), started.stderr) == (0, True, "")
        after = await env.client.call("xo.getAllObjects", {"filter": {"id": halted["id"]}})
        assert after[halted["id"]]["power_state"] == "Running"  # read-your-writes


async def test_legacy_flags_and_help(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        registered = await env.cli("--register", env.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert registered.code == 0, registered
        assert "--register is deprecated" in registered.stderr
        commands = await env.cli("--list-commands", "xo.*")
        assert commands.code == 0 and commands.stdout.startswith("xo.getAllObjects ")
        objects = await env.cli("--list-objects", "--name_label", "type=pool")
        assert objects.code == 0 and objects.json() == [{"name_label": "Simulated pool"}]

        top = await env.cli("--help")
        assert top.code == 0 and "exit codes:" in top.stdout and "  7    invalid" in top.stdout
        for command in (
            "register",
            "unregister",
            "create-token",
            "list-commands",
            "list-objects",
            "watch",
        ):
            helped = await env.cli(command, "--help")
            assert helped.code == 0, (command, helped)
            assert f"xod-cli {command}" in helped.stdout and "exit codes:" in helped.stdout
        method_help = await env.cli("vm.start", "--help")
        assert method_help.code == 0
        assert "vm.start id=<string> [host=<string>]" in method_help.stdout
        # As in XO, actions publish no permission: each checks its objects.
        assert "permission:" not in method_help.stdout
        admin_help = await env.cli("user.create", "--help")
        assert "permission: admin" in admin_help.stdout
