"""A running xod (real aiohttp server on loopback) and a plain `websockets` JSON-RPC client."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import websockets
from argon2 import PasswordHasher

from xod.server.app import ServerConfig, XodApp
from xod.store import Store

ADMIN_EMAIL = "admin@example.test"
ADMIN_PASSWORD = "correct horse battery staple"

FAST_CONNECTION = {
    "call_timeout": 5.0,
    "probe_timeout": 1.0,
    "backoff_initial": 0.05,
    "backoff_max": 0.3,
}


def cheap_hasher() -> PasswordHasher:
    # Real argon2id, small cost so tests stay fast; production uses the library defaults.
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@contextlib.asynccontextmanager
async def running_xod(state_dir: Path, **options: Any) -> AsyncIterator[XodApp]:
    store = Store.open(state_dir, cheap_hasher())
    config = ServerConfig(
        state_dir=state_dir,
        port=0,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        connection_options=FAST_CONNECTION,
        connect_timeout=10.0,
        store=store,
        **options,
    )
    app = XodApp(config)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error
        self.code = error.get("code")
        self.data = error.get("data")


class Client:
    """A minimal JSON-RPC client that matches responses by id (they may come out of order)."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(-9007199254740991)  # xo-lib's first id

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, str) else frame.decode())

    async def recv(self) -> Any:
        return orjson.loads(await self.ws.recv())

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        request_id = next(self._ids)
        message: dict[str, Any] = {"id": request_id, "jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self.ws.send(orjson.dumps(message).decode())
        while True:
            reply = await self.recv()
            if isinstance(reply, dict) and reply.get("id") == request_id:
                break
        if "error" in reply:
            raise RpcError(reply["error"])
        return reply["result"]

    async def sign_in(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> Any:
        return await self.call("session.signIn", {"email": email, "password": password})


@contextlib.asynccontextmanager
async def connect(app: XodApp, path: str = "/api/", **options: Any) -> AsyncIterator[Client]:
    url = f"ws://{app.config.host}:{app.port}{path}"
    options.setdefault("max_size", 2**30)
    async with websockets.connect(url, **options) as ws:
        yield Client(ws)
