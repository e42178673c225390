"""A cluster for the tests: a real nats-server (JetStream), two simulated pools in this process,
and N `xod serve` processes sharing them, each with its own state directory. The pools are
added on one instance (`server.add`); the others learn of them through the shared state.

What a user checks is read over the sockets: /readyz (who owns what), JSON-RPC over WebSocket
(`xo.getAllObjects`, `xod.subscribe`, actions). `reference_objects` is the oracle: a fresh,
single xod (no NATS) synced from the same simulators.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import websockets

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD, Client, running_xod
from tests.api.harness import connect as connect_app
from tests.cluster.nats_server import NatsServer
from tests.daemon.helpers import XodProcess
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator

LEASE_SECONDS = 2.0
# Bounds of the waits (on 2 shared cores, three daemons and two simulators).
START_TIMEOUT = 60.0
SETTLE_TIMEOUT = 60.0


class Instance:
    def __init__(self, name: str, process: XodProcess) -> None:
        self.name = name
        self.process = process
        self.url = ""

    @property
    def alive(self) -> bool:
        return self.process.proc.poll() is None

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.url}/readyz", timeout=aiohttp.ClientTimeout(total=10)) as response,
        ):
            return response.status, await response.json()

    async def metrics(self) -> str:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.url}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as response,
        ):
            return await response.text()

    async def owned(self) -> list[str]:
        _status, body = await self.readyz()
        owned: list[str] = body["cluster"]["owned_pools"]
        return owned

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        ws_url = self.url.replace("http", "ws", 1) + "/api/"
        async with websockets.connect(ws_url, max_size=2**30) as ws:
            client = Client(ws)
            await client.sign_in()
            yield client

    async def objects(self) -> dict[str, Any]:
        async with self.client() as client:
            objects: dict[str, Any] = await client.call("xo.getAllObjects")
            return objects


class Cluster:
    def __init__(
        self,
        tmp: Path,
        nats: NatsServer,
        sims: list[Simulator],
        env: dict[str, str] | None = None,
    ) -> None:
        self.tmp = tmp
        self.env = env or {}
        self.nats = nats
        self.sims = sims
        self.instances: list[Instance] = []
        self.server_ids: list[str] = []

    async def register_servers(self) -> None:
        async with self.instances[0].client() as client:
            for sim in self.sims:
                server_id = await client.call(
                    "server.add",
                    {"host": sim.master_url, "username": "root", "password": "password"},
                )
                self.server_ids.append(server_id)

    def spawn(self, name: str) -> Instance:
        state = self.tmp / name / "state"
        env = {
            "XOD_CLUSTER_NATS": self.nats.url,
            "XOD_CLUSTER_INSTANCE": name,
            "XOD_CLUSTER_LEASE_SECONDS": str(LEASE_SECONDS),
            "XOD_ADMIN_EMAIL": ADMIN_EMAIL,
            "XOD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "XOD_LOG_LEVEL": "info",
            **self.env,
        }
        (self.tmp / name).mkdir(exist_ok=True)
        process = XodProcess(
            ["--listen", "127.0.0.1:0", "--state-dir", str(state)], self.tmp / name, env=env
        )
        instance = Instance(name, process)
        self.instances.append(instance)
        return instance

    async def start(self, count: int) -> None:
        for index in range(count):
            instance = self.spawn(f"xod-{index + 1}")
            instance.url = await asyncio.to_thread(instance.process.url, START_TIMEOUT)
        await self.register_servers()
        await self.wait_ready()

    async def wait_ready(self) -> None:
        """Every live instance ready (all pools in its replica), every pool owned by one."""

        async def ready() -> bool:
            owners: list[str] = []
            for instance in self.live():
                status, body = await instance.readyz()
                if status != 200:
                    return False
                owners += body["cluster"]["owned_pools"]
            return sorted(owners) == sorted(self.server_ids)

        await wait_until_async(ready, START_TIMEOUT, "every instance ready, every pool owned")

    def live(self) -> list[Instance]:
        return [i for i in self.instances if i.alive]

    async def owner_of(self, server_id: str) -> Instance:
        for instance in self.live():
            if server_id in await instance.owned():
                return instance
        raise AssertionError(f"no live instance owns {server_id}")

    def kill(self, instance: Instance) -> None:
        instance.process.proc.send_signal(signal.SIGKILL)
        instance.process.proc.wait(10)

    def stop(self) -> None:
        for instance in self.instances:
            instance.process.stop()


@contextlib.asynccontextmanager
async def running_cluster(
    tmp: Path,
    count: int = 3,
    *,
    sim_config: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Cluster]:
    options = {"hosts": 1, "vms": 8, "templates": 2} | (sim_config or {})
    with NatsServer(tmp / "nats") as nats:
        async with (
            Simulator(SimConfig(seed=1, **options)) as first,
            Simulator(SimConfig(seed=2, **options)) as second,
        ):
            cluster = Cluster(tmp, nats, [first, second], env or {})
            try:
                await cluster.start(count)
                yield cluster
            finally:
                await asyncio.to_thread(cluster.stop)


async def reference_objects(tmp: Path, sims: list[Simulator]) -> dict[str, Any]:
    """Every object as a fresh single xod (no NATS) sees the simulators now."""
    async with running_xod(tmp) as app, connect_app(app) as client:
        await client.sign_in()
        for sim in sims:
            server_id = await client.call(
                "server.add", {"host": sim.master_url, "username": "root", "password": "password"}
            )
            deadline = time.monotonic() + SETTLE_TIMEOUT
            while not app.pools.status(server_id).synced:
                assert time.monotonic() < deadline, "the reference never synced"
                await asyncio.sleep(0.05)
        objects: dict[str, Any] = await client.call("xo.getAllObjects")
        return objects


def wait_log_entry(process: XodProcess, event: str, timeout: float) -> dict[str, Any]:
    """The first JSON log line of `process` whose event is `event` (a line still being written
    is skipped until it is whole)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in process.stderr.splitlines():
            with contextlib.suppress(ValueError):
                entry: dict[str, Any] = json.loads(line)
                if entry.get("event") == event:
                    return entry
        if process.proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no log event {event!r}; stderr:\n{process.stderr[-3000:]}")


async def wait_until_async(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await condition():
                return
        except (OSError, aiohttp.ClientError, websockets.WebSocketException):
            pass  # an instance not listening yet, or just killed
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(interval)


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What differs, briefly (ids missing, extra, or with other fields)."""
    found = [f"missing {i} ({expected[i].get('type')})" for i in expected if i not in actual]
    found += [f"extra {i} ({actual[i].get('type')})" for i in actual if i not in expected]
    for object_id, obj in expected.items():
        other = actual.get(object_id)
        if other is not None and other != obj:
            fields = sorted(k for k in obj.keys() | other.keys() if obj.get(k) != other.get(k))
            found.append(f"{obj.get('type')} {object_id}: {fields}")
    return found
