"""Connections that never sign in and never read cannot make xod hold their responses: past an
anonymous connection's small output budget (and past the daemon-wide output buffer) xod stops
reading their requests, keeps serving signed-in clients, and answers every request once the
client reads (issue #11 item 2; bench/memory_attack.py measures the full-size attack)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from tests.api.harness import connect, running_xod
from tests.server.raw_ws import RawWebSocket
from xod.server.app import XodApp
from xod.server.limits import ANONYMOUS_CONCURRENT_CALLS
from xod.server.peer import Peer
from xod.server.ws import DEFAULT_WRITE_BUFFER_HIGH

ATTACKERS = 10
# xod's socket send buffer: small, so that the kernel cannot absorb the attack for xod.
SEND_BUFFER = 16 * 1024
CALLS = 100  # × ≈60 KiB of rpc.discover each: ≈6 MiB per connection if all were answered


async def reply_size(app: XodApp) -> int:
    async with connect(app) as probe:
        await probe.send_raw(orjson.dumps({"jsonrpc": "2.0", "id": 0, "method": "rpc.discover"}))
        async with asyncio.timeout(5):  # one rpc.discover reply
            return len(await probe.ws.recv())


def peer_of(app: XodApp, attacker: RawWebSocket) -> Peer:
    port = attacker.sock.getsockname()[1]
    found = [p for p in app.fanout.peers if p.transport.get_extra_info("peername")[1] == port]
    assert found, "an attacker's connection is gone: xod closed it instead of holding it back"
    return found[0]


async def attack(app: XodApp) -> tuple[list[RawWebSocket], list[asyncio.Task[None]]]:
    assert app.port is not None, "xod is not listening"
    attackers = [await RawWebSocket.connect(app.config.host, app.port) for _ in range(ATTACKERS)]
    calls = [{"jsonrpc": "2.0", "id": i, "method": "rpc.discover"} for i in range(CALLS)]
    return attackers, [a.send_calls(calls) for a in attackers]


async def watch_while_serving(app: XodApp, attackers: list[RawWebSocket]) -> dict[str, Any]:
    """Largest output held per attacker and daemon-wide while a signed-in client makes 20
    calls, each of which must be answered within 2 s."""
    peers = [peer_of(app, a) for a in attackers]
    most_held = 0
    most_queued = 0
    async with connect(app) as user:
        await user.sign_in()
        for _ in range(20):
            async with asyncio.timeout(2):  # a signed-in call, during the attack
                assert isinstance(await user.call("system.getVersion"), str)
            most_held = max(most_held, *(p.held_bytes for p in peers))
            most_queued = max(most_queued, app.fanout.limits.queued)
            await asyncio.sleep(0.05)
    return {"held": most_held, "queued": most_queued, "closed": [p.closed for p in peers]}


async def drain_all(attackers: list[RawWebSocket], senders: list[asyncio.Task[None]]) -> None:
    """The attackers now read, all at once: every one of their calls is answered."""

    async def drain(attacker: RawWebSocket, sender: asyncio.Task[None]) -> set[int]:
        answered: set[int] = set()
        while len(answered) < CALLS:
            opcode, payload = await attacker.recv()
            assert opcode == 0x1, (opcode, payload[:100])
            reply = orjson.loads(payload)
            assert "result" in reply, reply
            answered.add(reply["id"])
        await sender
        attacker.close()
        return answered

    async with asyncio.timeout(30):  # every attacker's replies
        answers = await asyncio.gather(*map(drain, attackers, senders))
    assert answers == [set(range(CALLS))] * ATTACKERS


async def test_anonymous_non_readers_are_held_to_their_budget(tmp_path: Path) -> None:
    # Reading stops at the budget, so only the calls already running (4, ≈60 KiB each) can
    # queue past it; the connection is closed past twice the budget (xod/server/peer.py):
    # 384 KiB keeps that ceiling clear of budget + 4 replies (128 KiB would sit right on it).
    budget = 384 * 1024
    async with running_xod(
        tmp_path, anonymous_budget_bytes=budget, ws_send_buffer=SEND_BUFFER
    ) as app:
        reply = await reply_size(app)
        attackers, senders = await attack(app)
        await asyncio.sleep(0.5)  # the attack is under way
        seen = await watch_while_serving(app, attackers)
        # Past its budget only the calls already running add their replies; plus what sits
        # in the transport (its high-water mark and the frame that crossed it).
        bound = budget + (ANONYMOUS_CONCURRENT_CALLS + 1) * reply + DEFAULT_WRITE_BUFFER_HIGH
        assert 0 < seen["held"] <= bound, seen
        assert seen["closed"] == [False] * ATTACKERS  # held back, not disconnected
        await drain_all(attackers, senders)


async def test_the_daemon_wide_output_buffer_bounds_all_connections(tmp_path: Path) -> None:
    limit = 256 * 1024  # less than the attackers' budgets together (10 × 256 KiB)
    async with running_xod(tmp_path, output_buffer_bytes=limit, ws_send_buffer=SEND_BUFFER) as app:
        releases: list[int] = []
        app.fanout.limits.release = lambda: releases.append(app.fanout.limits.queued)
        app.fanout.limits.release_after_bytes = limit // 2  # this attack is a burst
        reply = await reply_size(app)
        attackers, senders = await attack(app)
        await asyncio.sleep(0.5)
        seen = await watch_while_serving(app, attackers)
        # Once full, nobody anonymous is read: only replies of calls already running go on.
        assert 0 < seen["queued"] <= limit + ATTACKERS * ANONYMOUS_CONCURRENT_CALLS * reply
        assert seen["queued"] < ATTACKERS * app.config.anonymous_budget_bytes
        await drain_all(attackers, senders)
        assert app.fanout.limits.queued == 0
        # Once the burst is over, the memory it took is given back (once, then follow-ups).
        async with asyncio.timeout(5):  # RELEASE_QUIET after the last output freed
            while not releases:
                await asyncio.sleep(0.05)
        assert releases[0] == 0


async def test_calls_in_flight_are_bounded_daemon_wide(tmp_path: Path) -> None:
    async with running_xod(tmp_path, max_calls_in_flight=6) as app:
        method = app.registry.get("system.getVersion")
        assert method is not None
        original = method.handler
        running = most = 0

        async def counting(ctx: Any, params: dict[str, Any]) -> Any:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.05)
            running -= 1
            return await original(ctx, params)

        method.handler = counting
        call = {"jsonrpc": "2.0", "method": "system.getVersion"}

        async def calls_from(client: Any, signed_in: bool) -> None:
            if signed_in:
                await client.sign_in()
            for i in range(8):
                await client.send_raw(orjson.dumps({**call, "id": i}))
            async with asyncio.timeout(10):  # all 8 answers
                replies = [orjson.loads(await client.ws.recv()) for _ in range(8)]
            assert sorted(r["id"] for r in replies) == list(range(8))

        async with connect(app) as a, connect(app) as b, connect(app) as c:
            # Anonymous connections share half of the daemon's calls.
            await asyncio.gather(calls_from(a, False), calls_from(b, False), calls_from(c, False))
            assert most == 3
            most = 0
            await asyncio.gather(calls_from(a, True), calls_from(b, True), calls_from(c, True))
            assert most == 6
