"""Keepalive: xod pings silent connections, answers the client's pings, and drops a peer that
stops answering."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.api.harness import connect, running_xod
from tests.api.live_support import wait_until

INTERVAL = 0.3


async def test_pings_pongs_and_dead_peers(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path, ws_heartbeat=INTERVAL) as app,
        connect(app, ping_interval=None) as alive,
        connect(app, ping_interval=None) as dead,
    ):
        await alive.sign_in()
        await dead.sign_in()
        # The client's own ping is answered.
        pong = await alive.ws.ping()
        await asyncio.wait_for(pong, 2)

        peers = {p.transport.get_extra_info("peername")[1]: p for p in app.fanout.peers}
        alive_peer = peers[alive.ws.local_address[1]]
        dead_peer = peers[dead.ws.local_address[1]]
        started = time.monotonic()
        # The dead one stops reading: xod's pings go unanswered.
        dead.ws.transport.pause_reading()
        await wait_until(lambda: dead_peer not in app.fanout.peers, 5)
        assert dead_peer.close_reason == "no pong: peer presumed dead"
        assert time.monotonic() - started >= INTERVAL

        # The live one was pinged (it answers by itself) and is still served.
        assert alive_peer.last_ping > started
        assert alive_peer in app.fanout.peers
        assert await alive.call("system.getVersion") == "0.1"
        # What the dead client finds once it reads again: the server closed it.
        dead.ws.transport.resume_reading()
        await asyncio.wait_for(dead.ws.wait_closed(), 5)
        assert dead.ws.close_code == 4009
        assert dead.ws.close_reason == "no pong: peer presumed dead"
