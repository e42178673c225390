"""Server records are shared state: a server added on one instance is followed by every
instance (any of them may own it, and another takes it over when its owner dies), and one
removed on any instance is dropped by its owner. Real `xod serve` processes, nats-server and
a simulated pool (tests/cluster/cluster_support.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.cluster.cluster_support import (
    SETTLE_TIMEOUT,
    START_TIMEOUT,
    Cluster,
    Instance,
    wait_until_async,
)
from tests.cluster.nats_server import NatsServer
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator


async def owners(cluster: Cluster, server_id: str) -> list[str]:
    return [i.name for i in cluster.live() if server_id in await i.owned()]


async def add_server(instance: Instance, sim: Simulator) -> str:
    async with instance.client() as admin:
        server_id: str = await admin.call(
            "server.add", {"host": sim.master_url, "username": "root", "password": "password"}
        )
        return server_id


async def test_a_server_added_or_removed_on_one_instance_is_followed_by_all(
    tmp_path: Path,
) -> None:
    with NatsServer(tmp_path / "nats") as nats:
        async with Simulator(SimConfig(seed=3, hosts=1, vms=4, templates=1)) as sim:
            cluster = Cluster(tmp_path, nats, [sim], {})
            try:
                for name in ("xod-1", "xod-2"):
                    instance = cluster.spawn(name)
                    instance.url = await asyncio.to_thread(instance.process.url, START_TIMEOUT)
                first, second = cluster.instances

                server_id = await add_server(first, sim)
                cluster.server_ids.append(server_id)
                await cluster.wait_ready()  # owned by exactly one instance, synced by all
                owner = await cluster.owner_of(server_id)
                other = second if owner is first else first

                # Removed through the instance that does not own it: the owner lets it go.
                async with other.client() as admin:
                    await admin.call("server.remove", {"id": server_id})

                async def nobody_owns_it() -> bool:
                    return await owners(cluster, server_id) == []

                await wait_until_async(nobody_owns_it, SETTLE_TIMEOUT, "the removed pool dropped")

                # Added again on one instance; its owner dies: the other one takes it over.
                server_id = await add_server(first, sim)
                cluster.server_ids[:] = [server_id]
                await cluster.wait_ready()
                owner = await cluster.owner_of(server_id)
                survivor = second if owner is first else first
                cluster.kill(owner)

                async def taken_over() -> bool:
                    return await owners(cluster, server_id) == [survivor.name]

                await wait_until_async(taken_over, SETTLE_TIMEOUT, "the pool taken over")
                vms = [o for o in (await survivor.objects()).values() if o["type"] == "VM"]
                assert vms
            finally:
                await asyncio.to_thread(cluster.stop)
