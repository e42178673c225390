"""Sign-in throttling seen by clients over real sockets: two loopback source addresses, one
guessing, one the account's owner."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from tests.api.harness import ADMIN_EMAIL, Client, RpcError, running_xod
from xod.server.app import XodApp

ATTACKER = "127.0.0.2"
OWNER = "127.0.0.1"


@contextlib.asynccontextmanager
async def connect_from(app: XodApp, source: str) -> AsyncIterator[Client]:
    url = f"ws://{app.config.host}:{app.port}/api/"
    async with websockets.connect(url, local_addr=(source, 0)) as ws:
        yield Client(ws)


async def test_guesses_from_one_address_do_not_delay_the_owner_from_another(
    tmp_path: Path,
) -> None:
    async with running_xod(tmp_path) as app:
        async with connect_from(app, ATTACKER) as attacker:
            # Guess until throttled, then keep trying: every refusal says how long to wait.
            with pytest.raises(RpcError) as first:
                await attacker.sign_in(ADMIN_EMAIL, "guess-0")
            assert first.value.code == 3
            refusals = []
            for attempt in range(1, 20):
                with pytest.raises(RpcError) as raised:
                    await attacker.sign_in(ADMIN_EMAIL, f"guess-{attempt}")
                refusals.append(raised.value.error)
            for error in refusals:
                assert error["code"] == -32000
                wait = error["data"]["retryAfter"]
                assert wait == 2
                assert error["message"] == f"too fast authentication tries: retry in {wait} s"
            # Even the right password waits, from the address that guessed.
            with pytest.raises(RpcError) as raised:
                await attacker.sign_in()
            assert raised.value.data == {"retryAfter": 2}

        # The owner, from another address, signs in at once.
        async with connect_from(app, OWNER) as owner:
            user = await asyncio.wait_for(owner.sign_in(), 5)
            assert user["email"] == ADMIN_EMAIL
            assert owner.ws.remote_address[0] == OWNER
