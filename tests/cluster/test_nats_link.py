"""The process's NATS link (xod/cluster/nats.py) against a real nats-server with JetStream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.cluster.nats_server import NatsServer
from xod.cluster.nats import connect


@pytest.fixture
def nats_server(tmp_path: Path):
    with NatsServer(tmp_path / "nats") as server:
        yield server


async def test_the_link_publishes_to_jetstream_and_survives_a_server_restart(nats_server):
    link = await connect([nats_server.url], "test-instance")
    try:
        await link.js.add_stream(name="LINK", subjects=["link.>"])
        first = await link.js.publish("link.a", b"one")
        await asyncio.to_thread(nats_server.restart)
        # The client reconnects by itself; the stream was on disk.
        async with asyncio.timeout(15):
            while not link.connected:
                await asyncio.sleep(0.05)
        second = await link.js.publish("link.a", b"two")
        assert second.seq == first.seq + 1
        message = await link.js.get_msg("LINK", first.seq)
        assert message.data == b"one"
    finally:
        await link.close()


async def test_an_unreachable_server_fails_the_first_connection(tmp_path: Path):
    server = NatsServer(tmp_path / "nats")  # never started: nothing listens on its port
    with_password = server.url.replace("nats://", "nats://xod:s3cret-pw@")
    with pytest.raises(ConnectionError, match="no NATS server") as failed:
        async with asyncio.timeout(30):  # the link's own bound is shorter
            await connect([with_password], "lonely")
    # The message names the server, never its password (it may reach a terminal unredacted).
    assert server.url.removeprefix("nats://") in str(failed.value)
    assert "s3cret-pw" not in str(failed.value) and "xod:" not in str(failed.value)
