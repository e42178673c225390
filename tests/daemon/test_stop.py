"""SIGTERM with actions in flight and a pool master that has stopped answering: xod still stops
within http.shutdown_timeout, cancelling the actions, and its log says what it gave up on
(issue #11 item 6: the stop used to wait the whole timeout on the pool's logout)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import orjson
import websockets

from tests.daemon.helpers import XodProcess
from tests.daemon.test_demo import rpc, wait_ready
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator
from xod.store import Store

ADMIN_PASSWORD = "admin-Secret-9c2d14"


async def test_stop_with_actions_in_flight_and_a_silent_master(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    store = Store.open(state_dir)
    # Seed 7 builds a pool with a halted VM (vm-00000) to start.
    config = SimConfig(hosts=1, vms=4, op_duration=60.0, seed=7)
    async with Simulator(config, listen="127.0.0.9") as sim:
        store.servers.add(sim.master_url, "root", "password", label="lab")
        store.close()
        xod = XodProcess(
            ["--listen", "127.0.0.1:0", "--state-dir", str(state_dir), "--set",
             "admin.email=ops@example.org", "--set", f"admin.password={ADMIN_PASSWORD}"],
            tmp_path,
        )  # fmt: skip
        try:
            url = await asyncio.to_thread(xod.url)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                await wait_ready(http, url)
            async with websockets.connect(url.replace("http", "ws", 1) + "/api/") as ws:
                credentials = {"email": "ops@example.org", "password": ADMIN_PASSWORD}
                await rpc(ws, "session.signInWithPassword", credentials)
                objects = await rpc(ws, "xo.getAllObjects", {}, 2)
                halted = [
                    o["id"] for o in objects.values()
                    if o["type"] == "VM" and o["power_state"] == "Halted"
                ]  # fmt: skip
                assert halted, "the seeded pool has a halted VM to start"
                for request_id, vm in enumerate(halted, 10):  # each takes a minute on the pool
                    call = {"jsonrpc": "2.0", "id": request_id, "method": "vm.start"}
                    await ws.send(orjson.dumps({**call, "params": {"id": vm}}))
                await asyncio.sleep(0.5)
                sim.set_latency(120.0)  # the master stops answering (its logout too)

                xod.signal(signal.SIGTERM)
                code = await asyncio.to_thread(xod.wait, 15)  # the process to exit
            assert code == 0
            events = xod.log_events()
            assert not [e for e in events if e["event"] == "graceful stop timed out"]
            stopped = next(e for e in events if e["event"] == "stopped")
            assert stopped["seconds"] < 10  # http.shutdown_timeout's default
            # What it gave up waiting for is in the log.
            assert any("pool(s) not logged out within" in e["event"] for e in events), events
        finally:
            xod.stop()
