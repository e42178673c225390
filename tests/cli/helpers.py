"""Run the real `xod-cli` as a subprocess against a xod (in this process) and the simulator.

xod serves from this test's event loop, so the CLI runs through asyncio's subprocess API: a
blocking `subprocess.run` would freeze the very server it talks to.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD, Client, connect, running_xod
from xod.server.app import XodApp
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator

CLI = [sys.executable, "-m", "xod.cli"]
ENTRY_POINT = str(Path(sys.executable).parent / "xod-cli")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return orjson.loads(self.stdout)


@dataclass
class Lab:
    """A xod connected to a simulated pool, and a private config dir for the CLI."""

    app: XodApp
    sim: Simulator
    client: Client  # an admin connection for checking what the CLI did
    config_home: Path

    @property
    def url(self) -> str:
        return self.app.url

    @property
    def config_file(self) -> Path:
        return self.config_home / "xod-cli" / "config.json"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XOD_CLI")}
        env["XDG_CONFIG_HOME"] = str(self.config_home)
        env.update(extra)
        return env

    async def cli(
        self,
        *args: str,
        stdin: bytes | None = None,
        program: list[str] | None = None,
        timeout: float = 30.0,
        **env: str,
    ) -> Result:
        return await run_cli(
            *args, env=self.env(**env), stdin=stdin, program=program, timeout=timeout
        )

    async def register(self) -> Result:
        result = await self.cli("register", self.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert result.code == 0, result
        return result


async def run_cli(
    *args: str,
    env: dict[str, str],
    stdin: bytes | None = None,
    program: list[str] | None = None,
    timeout: float = 30.0,
) -> Result:
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *(program or CLI),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin or b""), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    if os.environ.get("XOD_CLI_TEST_TIMING"):
        print(f"{time.monotonic() - started:6.2f}s xod-cli {' '.join(args)}")
    return Result(process.returncode, out.decode(), err.decode())


async def wait_connected(client: Client, server_id: str) -> None:
    for _ in range(400):
        servers = {s["id"]: s for s in await client.call("server.getAll")}
        if servers[server_id]["status"] == "connected":
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"server never connected: {servers[server_id]}")


@contextlib.asynccontextmanager
async def lab(tmp_path: Path, **sim_options: Any) -> AsyncIterator[Lab]:
    sim_config = SimConfig(**{"hosts": 1, "vms": 4, "templates": 2, "seed": 7, **sim_options})
    async with (
        Simulator(sim_config) as sim,
        running_xod(tmp_path / "xod") as app,
        connect(app) as client,
    ):
        await client.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        server_id = await client.call(
            "server.add",
            {"host": sim.master_url, "username": "root", "password": "password", "label": "lab"},
        )
        await wait_connected(client, server_id)
        yield Lab(app, sim, client, tmp_path / "config")


async def sim_call(sim: Simulator, method: str, *args: Any) -> Any:
    """Call the simulated pool directly (not through xod), as another XAPI client would."""
    master = sim.pool.master
    session = await sim.pool.call(
        "session.login_with_password", ["root", "password", "1.0", "test"], host=master
    )
    return await sim.pool.call(method, [session, *args], host=master)
