"""The listing curl commands of Xen Orchestra's REST API docs, run verbatim with the `curl`
binary against xod (only the host and the token differ), the token from `xod-cli create-token`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.cli.helpers import run_cli
from tests.rest.helpers import rest_lab

# The docs' curl commands, character for character but for the address and the token (the
# third is the docs' NDJSON request, quoted for the shell).
DOC_COMMANDS = [
    """curl -b \\
authenticationToken={token} \\
{base}/rest/v0/""",
    """curl \\
-b authenticationToken={token} \\
{base}/rest/v0/vms?fields=name_label,power_state""",
    """curl \\
-b authenticationToken={token} \\
'{base}/rest/v0/vms?fields=name_label,power_state&ndjson'""",
]


async def curl(command: str) -> bytes:
    """Run a shell command line (as a user pastes it) and return its output."""
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    return out


async def test_documented_curl_listings(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        created = await run_cli(
            "create-token",
            lab.app.url,
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            env={"XDG_CONFIG_HOME": str(tmp_path / "config"), "PATH": "/usr/bin:/bin"},
        )
        assert created.code == 0, created
        token = created.stdout.strip().splitlines()[-1]
        vms = await lab.rpc.call("xo.getAllObjects", {"filter": {"type": "VM"}})
        expected = sorted(
            [v["name_label"], v["power_state"], f"/rest/v0/vms/{i}"] for i, v in vms.items()
        )
        fill = {"token": token, "base": lab.app.url}

        # /rest/v0/ is a redirect to the docs page (XO's current behaviour).
        assert await curl(DOC_COMMANDS[0].format(**fill)) == b"302: Found"
        page = await curl(DOC_COMMANDS[0].format(**fill).replace("curl ", "curl -L ", 1))
        assert b"<h1>xod REST API" in page
        listed = orjson.loads(await curl(DOC_COMMANDS[1].format(**fill)))
        assert sorted([o["name_label"], o["power_state"], o["href"]] for o in listed) == expected
        lines = (await curl(DOC_COMMANDS[2].format(**fill))).splitlines()
        as_lines = [orjson.loads(line) for line in lines]
        assert sorted([o["name_label"], o["power_state"], o["href"]] for o in as_lines) == expected
        # Without the cookie: 401 and XO's JSON error.
        refused = await curl(f"curl -s -w ' %{{http_code}}' {lab.app.url}/rest/v0/vms")
        assert refused == b'{"error":"invalid credentials"} 401'
