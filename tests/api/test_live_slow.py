"""Slow clients: one that stops reading stays under its memory bound, is closed with 4008 and a
reason once behind for too long; one that pauses briefly gets its changes coalesced and ends
with the right state; a healthy client keeps receiving on time throughout."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.api.harness import Client, connect
from tests.api.live_support import decode, pool_and_xod, small_buffer_client, wait_until
from xod.metrics import REGISTRY
from xod.server.app import XodApp
from xod.server.peer import Peer

BUDGET = 32 * 1024
HIGH_WATER = 8 * 1024
MAX_LAG = 1.5


def _peer_of(app: XodApp, sock: socket.socket) -> Peer:
    port = sock.getsockname()[1]
    return next(p for p in app.fanout.peers if p.transport.get_extra_info("peername")[1] == port)


class Mirror:
    """A client's view: `xo.getAllObjects`, then `all` notifications applied in order."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.arrivals: list[tuple[float, int]] = []

    def apply(self, message: dict[str, Any]) -> None:
        if message.get("method") != "all":
            return
        params = message["params"]
        if params["type"] == "enter":
            self.objects.update(params["items"])
        else:
            for object_id in params["items"]:
                self.objects.pop(object_id, None)


async def _start_mirror(client: Client) -> Mirror:
    mirror = Mirror()
    await client.sign_in()
    mirror.objects = await client.call("xo.getAllObjects")
    return mirror


async def _follow(client: Client, mirror: Mirror, revisions: dict[int, float]) -> None:
    async for frame in client.ws:
        mirror.apply(decode(frame))
        # The revision the store had when this frame arrived bounds its latency from above.
        mirror.arrivals.append((time.monotonic(), max(revisions) if revisions else 0))


async def test_stalled_client_is_bounded_and_closed_others_unaffected(tmp_path: Path) -> None:
    async with pool_and_xod(
        tmp_path,
        vms=30,
        client_budget_bytes=BUDGET,
        client_max_lag=MAX_LAG,
        ws_write_buffer_high=HIGH_WATER,
        ws_send_buffer=16 * 1024,
    ) as (sim, app):
        slow_closed_before = REGISTRY.get_sample_value("xod_slow_clients_closed_total")
        revisions: dict[int, float] = {}
        app.objects.subscribe(lambda batch: revisions.__setitem__(batch.revision, time.monotonic()))
        async with connect(app) as healthy:
            healthy_view = await _start_mirror(healthy)
            sluggish, sluggish_sock = await small_buffer_client(app)
            sluggish_view = await _start_mirror(sluggish)
            stalled, stalled_sock = await small_buffer_client(app)
            await stalled.sign_in()
            stalled_peer = _peer_of(app, stalled_sock)
            sluggish_peer = _peer_of(app, sluggish_sock)
            follower = asyncio.create_task(_follow(healthy, healthy_view, revisions))
            await sim.pool.start_churn(800)
            held: list[int] = []
            coalesced = {"stalled": False, "sluggish": False}
            started = time.monotonic()
            while not stalled_peer.closed:
                held.append(stalled_peer.held_bytes)
                coalesced["stalled"] |= stalled_peer.pending is not None
                coalesced["sluggish"] |= sluggish_peer.pending is not None
                if time.monotonic() - started > 1.0 and not follower_started(sluggish_view):
                    sluggish_task = asyncio.create_task(_follow(sluggish, sluggish_view, revisions))
                    sluggish_view.arrivals.append((time.monotonic(), -1))
                assert time.monotonic() - started < MAX_LAG + 4, "stalled client never closed"
                await asyncio.sleep(0.02)
            closed_after = time.monotonic() - started

            # Bounded: never more than the budget plus the transport's high-water mark
            # (and the one frame that crossed it).
            assert coalesced["stalled"] and coalesced["sluggish"]
            assert max(held) <= BUDGET + HIGH_WATER + 64 * 1024, max(held)
            assert MAX_LAG <= closed_after <= MAX_LAG + 2
            assert "too slow" in (stalled_peer.close_reason or "")
            slow_closed = REGISTRY.get_sample_value("xod_slow_clients_closed_total")
            assert slow_closed == (slow_closed_before or 0) + 1  # /metrics counts it

            await asyncio.sleep(0.5)
            await sim.pool.stop_churn()
            # Once quiet, both readers converge on exactly the cache's objects.
            await wait_until(lambda: healthy_view.objects == dict(app.objects.objects), 5)
            await wait_until(lambda: sluggish_view.objects == dict(app.objects.objects), 5)

            # The healthy client never waited: frames kept coming while the other stalled.
            times = [t for t, _ in healthy_view.arrivals]
            window = [t for t in times if started <= t <= started + closed_after]
            assert len(window) > 10
            assert max(b - a for a, b in itertools.pairwise(window)) < 0.5
            follower.cancel()
            sluggish_task.cancel()

        # The stalled client, reading again, finds the close frame: 4008 and the reason.
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await stalled.ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
        assert "too slow" in closed.value.rcvd.reason
        await sluggish.ws.close()
        for sock in (stalled_sock, sluggish_sock):
            sock.close()


def follower_started(view: Mirror) -> bool:
    return any(revision == -1 for _, revision in view.arrivals)
