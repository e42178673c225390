"""The change log keeps each change `cluster.log_max_age` seconds: an instance started after
the pools' first syncs left the log still builds every pool, from the owners' checkpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.cluster.cluster_support import (
    START_TIMEOUT,
    differences,
    reference_objects,
    running_cluster,
    wait_log_entry,
)
from tests.cluster.nats_server import NatsServer
from tests.daemon.helpers import XodProcess
from xod.cluster.changelog import POOL_HEADER, STREAM, encode, ensure_stream, subject_of
from xod.cluster.nats import connect

pytestmark = pytest.mark.timeout(300)

LOG_MAX_AGE = 3.0  # a checkpoint every second


async def test_a_late_instance_builds_the_pools_from_checkpoints(tmp_path: Path):
    env = {"XOD_CLUSTER_LOG_MAX_AGE": str(LOG_MAX_AGE)}
    async with running_cluster(tmp_path / "c", 1, env=env) as cluster:
        link = await connect([cluster.nats.url], "retention-test")
        try:
            first = (await link.js.stream_info(STREAM)).state
            await asyncio.sleep(LOG_MAX_AGE + 1.5)
            later = (await link.js.stream_info(STREAM)).state
        finally:
            await link.close()
        # The first syncs' messages are gone from the log.
        assert later.first_seq > first.last_seq
        late = cluster.spawn("xod-late")
        late.url = await asyncio.to_thread(late.process.url, START_TIMEOUT)
        await cluster.wait_ready()
        reference = await reference_objects(tmp_path / "reference", cluster.sims)
        assert differences(reference, await late.objects()) == []


async def test_an_instance_starts_on_a_log_whose_changes_all_aged_out(tmp_path: Path):
    with NatsServer(tmp_path / "nats") as nats:
        link = await connect([nats.url], "retention-test")
        try:
            await ensure_stream(link, 1.0)
            changes = encode({"gone": {"id": "gone", "type": "VM", "$pool": "p"}})
            ack = await link.js.publish(subject_of("s"), changes, headers={POOL_HEADER: "p"})
            await asyncio.sleep(2.5)  # aged out
            assert (await link.js.stream_info(STREAM)).state.messages == 0
        finally:
            await link.close()
        env = {"XOD_CLUSTER_NATS": nats.url, "XOD_CLUSTER_LOG_MAX_AGE": "1"}
        process = XodProcess(
            ["--listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "state")], tmp_path, env=env
        )
        try:
            caught_up = await asyncio.to_thread(wait_log_entry, process, "replica caught up", 30)
            # At once, at the log's revision, with nothing of what aged out.
            assert caught_up["revision"] == ack.seq and caught_up["messages"] == 0
            assert caught_up["seconds"] < 5
        finally:
            process.stop()
