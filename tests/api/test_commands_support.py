"""Shared set-up for the command tests: a simulated pool registered in a running xod, a signed-in
admin client, and the explicit XAPI setters the simulator does not have yet.

(No tests here: helpers only, imported by the other test_commands* files.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.api.harness import Client, connect, running_xod
from xod.server.app import XodApp
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator

# Short enough for tests, long enough for a failover on loopback.
TEST_FAILOVER_TIMEOUT = 10.0


@dataclass
class Env:
    sim: Simulator
    app: XodApp
    client: Client
    server_id: str

    # -- the cache, as a client sees it ------------------------------------------------------

    async def objects(self, filter_spec: Any = None) -> dict[str, dict]:
        params = {} if filter_spec is None else {"filter": filter_spec}
        return await self.client.call("xo.getAllObjects", params)

    async def object(self, object_id: str) -> dict | None:
        return (await self.objects({"id": object_id})).get(object_id)

    async def vm_in_state(self, power_state: str) -> dict:
        vms = await self.objects({"type": "VM", "power_state": power_state})
        return vms[min(vms)]

    # -- the pool, as the simulator holds it ---------------------------------------------------

    def sim_record(self, cls: str, uuid: str) -> dict:
        db = self.sim.pool.db
        return db.get(cls, db.by_uuid(cls, uuid))

    def sim_count(self, cls: str, **fields: Any) -> int:
        return sum(
            all(record.get(k) == v for k, v in fields.items())
            for record in self.sim.pool.db.tables[cls].values()
        )


async def wait_synced(app: XodApp, server_id: str) -> None:
    async with asyncio.timeout(10):
        while not app.pools.status(server_id).synced:
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def commands_env(tmp_path: Path, **sim_options: Any) -> AsyncIterator[Env]:
    options: dict[str, Any] = {"hosts": 2, "vms": 8, "templates": 2, "seed": 7}
    options.update(sim_options)
    async with (
        Simulator(SimConfig(**options)) as sim,
        running_xod(tmp_path, failover_timeout=TEST_FAILOVER_TIMEOUT) as app,
        connect(app) as client,
    ):
        await client.sign_in()
        server_id = await client.call(
            "server.add", {"host": sim.master_url, "username": "root", "password": "password"}
        )
        await wait_synced(app, server_id)
        yield Env(sim, app, client, server_id)
