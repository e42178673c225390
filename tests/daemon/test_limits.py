"""The daemon's limits reach the running server: limits.notification_frame_bytes bounds the `all`
notification frames at start and after a reload. In-process (the Daemon object, real sockets),
so that a reload is one call."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import websockets

from tests.daemon.test_demo import metric_values
from xod import config
from xod.lifecycle import Daemon
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator
from xod.store import Store

ADMIN_PASSWORD = "admin-Secret-5b1e07"
VERSION_CALL = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "system.getVersion"})


def settings_with(state_dir: Path, notification_frame_bytes: int, **limits: str) -> config.Settings:
    return config.load(
        path=None,
        required=False,
        environ={},
        overrides={
            "http.listen": "127.0.0.1:0",
            "state.dir": str(state_dir),
            "admin.email": "ops@example.org",
            "admin.password": ADMIN_PASSWORD,
            "limits.notification_frame_bytes": str(notification_frame_bytes),
            "http.shutdown_timeout": "5",
            **{f"limits.{name}": value for name, value in limits.items()},
        },
    )


async def call_collecting_all(ws, method: str, params: dict, request_id: int) -> list[str]:
    """Call `method`; every `all` notification received before its reply, as sent."""
    await ws.send(
        orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    )
    notifications: list[Any] = []
    async with asyncio.timeout(20):
        while True:
            text = await ws.recv()
            message = orjson.loads(text)
            if message.get("id") == request_id:
                assert "error" not in message, message
                return notifications
            if message.get("method") == "all":
                notifications.append(text)


def frames_of(notifications: list[str], kind: str) -> list[tuple[int, dict]]:
    frames = []
    for text in notifications:
        params = orjson.loads(text)["params"]
        if params["type"] == kind:
            frames.append((len(text.encode()), params["items"]))
    return frames


def assert_bounded(frames: list[tuple[int, dict]], limit: int) -> None:
    assert len(frames) > 1  # the batch was split
    for size, items in frames:
        # One object bigger than the limit still goes, alone in its frame.
        assert size <= limit or len(items) == 1


async def test_notification_frame_bytes_splits_all_frames_and_reloads(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    async with Simulator(SimConfig(hosts=2, vms=10), listen="127.0.0.7") as sim:
        store = Store.open(state_dir)
        server = store.servers.add(sim.master_url, "root", "password", enabled=False)
        store.close()
        current = [settings_with(state_dir, 4096)]
        daemon = Daemon(current[0], lambda: current[0])
        listening = await daemon.start()
        try:
            async with websockets.connect(
                listening.url.replace("http", "ws", 1) + "/api/", max_size=None
            ) as ws:
                await call_collecting_all(
                    ws,
                    "session.signInWithPassword",
                    {"email": "ops@example.org", "password": ADMIN_PASSWORD},
                    1,
                )
                # The pool's first sync: every object enters in one store batch.
                notifications = await call_collecting_all(ws, "server.enable", {"id": server.id}, 2)
                enter = frames_of(notifications, "enter")
                assert_bounded(enter, 4096)
                entered = [object_id for _, items in enter for object_id in items]
                await ws.send(
                    orjson.dumps({"jsonrpc": "2.0", "id": 3, "method": "xo.getAllObjects"})
                )
                every_object = orjson.loads(await ws.recv())["result"]
                assert sorted(entered) == sorted(every_object)

                # SIGHUP's reload: a smaller bound for the next batches, same connection.
                current[0] = settings_with(state_dir, 1024)
                await daemon.reload()
                notifications = await call_collecting_all(
                    ws, "server.disable", {"id": server.id}, 4
                )
                exits = frames_of(notifications, "exit")
                assert_bounded(exits, 1024)
                assert all(size <= 1024 for size, _ in exits)  # ids only: nothing oversized
                exited = [object_id for _, items in exits for object_id in items]
                assert sorted(exited) == sorted(every_object)
        finally:
            await daemon.stop(quiet=True)


async def test_max_clients_counts_open_connections_and_frees_slots(tmp_path: Path) -> None:
    settings = settings_with(tmp_path / "state", 4096, max_clients="1")
    daemon = Daemon(settings, lambda: settings)
    listening = await daemon.start()
    api = listening.url.replace("http", "ws", 1) + "/api/"
    try:
        async with aiohttp.ClientSession() as http:

            async def clients_connected() -> float:
                async with http.get(f"{listening.url}/metrics") as response:
                    return metric_values(await response.text(), "xod_clients_connected")[""]

            async with websockets.connect(api) as first:
                await first.send(VERSION_CALL)
                await first.recv()
                assert await clients_connected() == 1.0
                with pytest.raises(websockets.InvalidStatus) as refused:
                    async with websockets.connect(api):
                        pass
                assert refused.value.response.status_code == 503
            # The slot is free once the first connection has ended.
            async with asyncio.timeout(5):
                while await clients_connected() != 0.0:
                    await asyncio.sleep(0.02)
            async with websockets.connect(api) as second:
                await second.send(VERSION_CALL)
                assert "result" in orjson.loads(await second.recv())
    finally:
        await daemon.stop(quiet=True)
