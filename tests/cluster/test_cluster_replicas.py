"""Three xod processes, one nats-server, two simulated pools: every instance serves the same
objects at the same revisions, a client resumes on another instance with its `since`, and an
action asked of any instance runs on the pool's owner and is visible at once where it was asked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.live_support import user_vms
from tests.cluster.cluster_support import (
    SETTLE_TIMEOUT,
    differences,
    reference_objects,
    running_cluster,
    wait_until_async,
)

pytestmark = pytest.mark.timeout(300)


async def test_three_instances_serve_the_same_objects_at_the_same_revisions(tmp_path: Path):
    async with running_cluster(tmp_path / "c", 3) as cluster:
        # Each pool is owned by exactly one instance.
        owners = {s: (await cluster.owner_of(s)).name for s in cluster.server_ids}
        assert len(owners) == 2
        reference = await reference_objects(tmp_path / "reference", cluster.sims)
        for instance in cluster.instances:
            assert differences(reference, await instance.objects()) == [], instance.name
        revisions = set()
        for instance in cluster.instances:
            async with instance.client() as client:
                revisions.add((await client.call("xod.subscribe", {}))["revision"])
        assert len(revisions) == 1, revisions
        (revision,) = revisions
        # /readyz and /metrics say who owns what and how far each replica is.
        for instance in cluster.instances:
            status, body = await instance.readyz()
            report = body["cluster"]
            assert status == 200 and report["instance"] == instance.name
            owned = sorted(s for s, name in owners.items() if name == instance.name)
            assert report["owned_pools"] == owned
            assert report["role"] == ("owner" if owned else "replica")
            assert report["revision"] == revision
            for server_id, pool in report["pools"].items():
                assert pool["owner"] == (server_id in owned)
                assert pool["replica_lag_seconds"] is not None and pool["replica_lag_seconds"] < 30
            metrics = await instance.metrics()
            for server_id in cluster.server_ids:
                labels = f'instance="{instance.name}",server="{server_id}"'
                owned_value = 1.0 if server_id in owned else 0.0
                assert f"xod_cluster_pool_owned{{{labels}}} {owned_value}" in metrics
            assert f'xod_cluster_replica_lag_messages{{instance="{instance.name}"}} 0.0' in metrics


async def test_a_client_resumes_on_another_instance_with_its_since(tmp_path: Path):
    async with running_cluster(tmp_path / "c", 3) as cluster:
        first, second = cluster.instances[0], cluster.instances[1]
        sim = cluster.sims[0]
        async with first.client() as client:
            subscribed = await client.call("xod.subscribe", {"filter": "type:/^VM$/"})
            since = subscribed["revision"]
        # A change while the client is away.
        ref, record = next(iter(user_vms(sim).items()))
        sim.pool.db.update("VM", ref, {"name_label": "renamed while away"})

        async def renamed_everywhere() -> bool:
            for instance in cluster.instances:
                objects = await instance.objects()
                if objects[record["uuid"]]["name_label"] != "renamed while away":
                    return False
            return True

        await wait_until_async(renamed_everywhere, SETTLE_TIMEOUT, "the rename in every replica")
        async with second.client() as client:
            resumed = await client.call("xod.subscribe", {"filter": "type:/^VM$/", "since": since})
            assert resumed["revision"] > since
            notification = await client.recv()
            params = notification["params"]
            # The net changes since then, not a snapshot of every VM.
            assert params["revision"] == resumed["revision"]
            assert set(params["enter"]) == {record["uuid"]}
            assert params["enter"][record["uuid"]]["name_label"] == "renamed while away"


async def test_an_action_on_a_non_owner_runs_on_the_owner_and_reads_back_at_once(tmp_path: Path):
    async with running_cluster(tmp_path / "c", 3) as cluster:
        server_id = cluster.server_ids[0]
        owner = await cluster.owner_of(server_id)
        other = next(i for i in cluster.instances if i is not owner)
        sim = cluster.sims[0]
        ref, record = next(iter(user_vms(sim).items()))
        before = list(sim.pool.call_log).count("VM.set_name_label")
        async with other.client() as client:
            assert await client.call("vm.set", {"id": record["uuid"], "name_label": "asked"})
            # Read-your-writes on the instance that was asked, right away.
            vm = await client.call("xo.getAllObjects", {"filter": {"id": record["uuid"]}})
            assert vm[record["uuid"]]["name_label"] == "asked"
        assert sim.pool.db.tables["VM"][ref]["name_label"] == "asked"
        assert list(sim.pool.call_log).count("VM.set_name_label") == before + 1


async def test_an_async_action_is_waited_for_on_any_instance(tmp_path: Path):
    """`_async` on a non-owner answers the task of the action the owner runs; `task.wait` on
    that instance answers its outcome (the job lives on the owner), also once the finished
    task left the cache."""
    async with running_cluster(tmp_path / "c", 3) as cluster:
        server_id = cluster.server_ids[0]
        owner = await cluster.owner_of(server_id)
        others = [i for i in cluster.instances if i is not owner]
        sim = cluster.sims[0]
        ref, record = next(iter(user_vms(sim).items()))
        async with others[0].client() as client:
            params = {"id": record["uuid"], "name_label": "waited", "_async": True}
            task_id = await client.call("vm.set", params)
            assert isinstance(task_id, str) and task_id != record["uuid"]
            assert await client.call("task.wait", {"id": task_id}) is True

            async def task_gone() -> bool:
                return task_id not in await others[0].objects()

            await wait_until_async(task_gone, SETTLE_TIMEOUT, "the finished task destroyed")
            assert await client.call("task.wait", {"id": task_id}) is True
        assert sim.pool.db.tables["VM"][ref]["name_label"] == "waited"


async def test_a_server_removed_on_any_instance_leaves_every_replica(tmp_path: Path):
    async with running_cluster(tmp_path / "c", 3) as cluster:
        server_id = cluster.server_ids[0]
        owner = await cluster.owner_of(server_id)
        other = next(i for i in cluster.instances if i is not owner)
        pool_ids = {o["$pool"] for o in (await other.objects()).values()}
        assert len(pool_ids) == 2
        async with other.client() as client:
            servers = await client.call("server.getAll")
            removed_pool = next(s["poolId"] for s in servers if s["id"] == server_id)
            assert await client.call("server.remove", {"id": server_id})

        async def gone_everywhere() -> bool:
            for instance in cluster.instances:
                pools = {o["$pool"] for o in (await instance.objects()).values()}
                if pools != pool_ids - {removed_pool}:
                    return False
            return True

        await wait_until_async(gone_everywhere, SETTLE_TIMEOUT, "the pool gone everywhere")
        for instance in cluster.instances:
            assert server_id not in await instance.owned()
