"""Shared by the live-change tests: a simulated pool registered in a running xod, changes made
straight in the simulator's database (their events follow), frames read with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgpack
import orjson
import websockets

from tests.api.harness import Client, connect, running_xod
from xod.server.app import XodApp
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator


@contextlib.asynccontextmanager
async def pool_and_xod(
    tmp_path: Path, *, vms: int = 6, seed: int = 5, **xod_options: Any
) -> AsyncIterator[tuple[Simulator, XodApp]]:
    async with (
        Simulator(SimConfig(hosts=1, vms=vms, templates=2, seed=seed)) as sim,
        running_xod(tmp_path, **xod_options) as app,
    ):
        async with connect(app) as admin:
            await admin.sign_in()
            server_id = await admin.call(
                "server.add", {"host": sim.master_url, "username": "root", "password": "password"}
            )
        deadline = time.monotonic() + 10
        while not app.pools.status(server_id).synced:
            assert time.monotonic() < deadline, "pool never synced"
            await asyncio.sleep(0.02)
        yield sim, app


def user_vms(sim: Simulator) -> dict[str, dict[str, Any]]:
    """ref → record of every user VM (no templates, snapshots or control domains)."""
    return {
        ref: r
        for ref, r in sim.pool.db.tables["VM"].items()
        if not r["is_a_template"] and not r["is_control_domain"] and not r["is_a_snapshot"]
    }


def set_vm(sim: Simulator, ref: str, **fields: Any) -> str:
    """Change a VM in the simulator; returns its XO id (the uuid)."""
    sim.pool.db.update("VM", ref, fields)
    return sim.pool.db.tables["VM"][ref]["uuid"]


def decode(frame: str | bytes) -> Any:
    return msgpack.unpackb(frame) if isinstance(frame, bytes) else orjson.loads(frame)


async def next_message(
    client: Client, predicate: Callable[[Any], bool] = lambda m: True, timeout: float = 5.0
) -> Any:
    """The next message (JSON or msgpack) satisfying `predicate`, skipping the others."""
    async with asyncio.timeout(timeout):
        while True:
            message = decode(await client.ws.recv())
            if predicate(message):
                return message


def is_changes(subscription: str) -> Callable[[Any], bool]:
    return lambda m: (
        isinstance(m, dict)
        and m.get("method") == "xod.changes"
        and m["params"]["subscription"] == subscription
    )


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def small_buffer_client(app: XodApp) -> tuple[Client, socket.socket]:
    """A websockets client with a 4 KiB receive buffer that reads only when told to: the way to
    make xod see a slow reader."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (app.config.host, app.port))
    ws = await websockets.connect(f"ws://{app.config.host}:{app.port}/api/", sock=sock,
                                  max_queue=1, max_size=2**30)  # fmt: skip
    return Client(ws), sock
