"""Every error a person meets: one line on stderr, no traceback, and its own exit code."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import orjson

from tests.api.harness import ADMIN_EMAIL
from tests.cli.helpers import Result, lab, run_cli
from xod.store import DATABASE_NAME


def one_line(result: Result, code: int, *fragments: str) -> None:
    assert result.code == code, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("xod-cli: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_errors_before_any_server(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    one_line(await run_cli("list-commands", env=env), 3, "not registered", "xod-cli register")
    one_line(await run_cli("vm.start", "id=x", env=env), 3, "not registered")
    one_line(await run_cli("watch", env=env), 3, "not registered")
    url = f"http://127.0.0.1:{closed_port()}"
    one_line(
        await run_cli("register", url, "a@b.c", "pw", env=env), 5, "server unreachable", url[7:]
    )
    one_line(await run_cli("frobnicate", env=env), 2, "unknown command 'frobnicate'")
    one_line(await run_cli("register", env=env), 2, "required")
    one_line(await run_cli("list-objects", "--limit", "0", env=env), 2, "--limit")
    one_line(await run_cli("register", "ftp://x", "a@b.c", "pw", env=env), 2, "invalid server URL")
    no_args = await run_cli(env=env)
    assert no_args.code == 2 and "exit codes:" in no_args.stderr


async def test_errors_from_a_live_server(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        await env.register()
        one_line(await env.cli("no.suchMethod"), 6, "unknown method: no.suchMethod")
        one_line(
            await env.cli("vm.start"),
            7,
            "invalid parameters for vm.start",
            "id: must have required property 'id'",
        )
        one_line(await env.cli("token.create", "expiresIn=5"), 7, "expiresIn:")
        one_line(
            await env.cli("vm.start", "id=x", "bogus=1"), 7, "bogus:"
        )  # additional property, named
        # Refused before sending: a boolean param given a non-boolean.
        one_line(await env.cli("vm.start", "id=x", "force=maybe"), 2, "force: expected boolean")
        one_line(await env.cli("vm.start", "key-without-value"), 2, "expected key=value")
        one_line(await env.cli("vm.start", "--frob"), 2, "unknown option --frob")

        # A method the server runs and refuses: exit 1, with the server's message and code.
        vms = await env.client.call("xo.getAllObjects", {"filter": {"type": "VM"}})
        running = next(o for o in vms.values() if o["power_state"] == "Running")
        one_line(
            await env.cli("vm.start", f"id={running['id']}", "--no-progress"),
            1,
            "vm.start:",
            "code 13",
        )
        one_line(await env.cli("vm.start", "id=no-such-vm", "--no-progress"), 1, "no such")

        # The registered token expires (the server's clock passed it): exit 8, register again.
        database = sqlite3.connect(env.app.config.state_dir / DATABASE_NAME)
        with database:
            database.execute("UPDATE tokens SET expiration = 1")
        database.close()
        one_line(await env.cli("system.getVersion"), 8, "expired or revoked", "register")
        config = orjson.loads(env.config_file.read_bytes())
        config["expiresAt"] = int(time.time() * 1000) - 1000
        env.config_file.write_bytes(orjson.dumps(config))
        one_line(await env.cli("list-objects"), 8, "the registered token expired on")

        # Wrong password: exit 4 (and the stored registration is left as it was).
        one_line(
            await env.cli("register", env.url, ADMIN_EMAIL, "wrong password"),
            4,
            "authentication failed",
        )
        assert orjson.loads(env.config_file.read_bytes())["token"] == config["token"]

        # The registered server goes away: exit 5.
        config["server"] = f"http://127.0.0.1:{closed_port()}"
        env.config_file.write_bytes(orjson.dumps(config))
        one_line(await env.cli("list-commands"), 5, "server unreachable")


async def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "XOD_CLI_DEBUG": "1", "PATH": "/usr/bin:/bin"}
    result = await run_cli("list-commands", env=env)
    assert result.code == 3 and "Traceback" in result.stderr
    assert result.stderr.rstrip().endswith(
        "xod-cli: not registered: run `xod-cli register URL EMAIL` first"
    )
