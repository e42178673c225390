"""A xod connected to a simulated pool, with an admin token and an HTTP client for `/rest/v0`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.api.harness import Client, connect, running_xod
from tests.cli.helpers import wait_connected
from xod.server.app import XodApp
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator

BASE = "/rest/v0"


@dataclass
class RestLab:
    app: XodApp
    sim: Simulator
    rpc: Client  # an admin JSON-RPC connection, to compare with and to set things up
    token: str  # an admin token
    http: aiohttp.ClientSession  # no credentials of its own

    def url(self, path: str) -> str:
        return f"{self.app.url}{BASE}{path}"

    @property
    def cookies(self) -> dict[str, str]:
        return {"authenticationToken": self.token}

    async def request(
        self, method: str, path: str, *, token: str | None = None, **options: Any
    ) -> aiohttp.ClientResponse:
        """A request with the admin token (or `token`), read whole; returns the response."""
        headers = options.pop("headers", {})
        if "Authorization" not in headers and token != "":
            headers["Cookie"] = f"authenticationToken={token or self.token}"
        response = await self.http.request(
            method, self.url(path), headers=headers, allow_redirects=False, **options
        )
        await response.read()
        return response

    async def get_json(self, path: str, **options: Any) -> Any:
        response = await self.request("GET", path, **options)
        assert response.status == 200, (response.status, await response.text())
        return await response.json(content_type=None)

    async def vm_ids(self) -> list[str]:
        hrefs = await self.get_json("/vms")
        return [href.rsplit("/", 1)[1] for href in hrefs]


async def create_token(rpc: Client) -> str:
    return await rpc.call("token.create", {"description": "rest tests"})


async def wait_for(predicate: Any, what: str, timeout: float = 10.0) -> Any:
    """Poll `predicate()` (sync or async) until it returns something truthy."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = predicate()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return value
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


@contextlib.asynccontextmanager
async def rest_lab(
    tmp_path: Path, xod_options: dict[str, Any] | None = None, **sim_options: Any
) -> AsyncIterator[RestLab]:
    sim_config = SimConfig(**{"hosts": 2, "vms": 4, "templates": 2, "seed": 7, **sim_options})
    async with (
        Simulator(sim_config) as sim,
        running_xod(tmp_path / "xod", **(xod_options or {})) as app,
        connect(app) as rpc,
        aiohttp.ClientSession() as http,
    ):
        await rpc.sign_in()
        server_id = await rpc.call(
            "server.add",
            {"host": sim.master_url, "username": "root", "password": "password", "label": "lab"},
        )
        await wait_connected(rpc, server_id)
        yield RestLab(app, sim, rpc, await create_token(rpc), http)
