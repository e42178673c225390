"""Sign-in throttling seen by clients over real sockets: two loopback source addresses, one
guessing, one the account's owner."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from tests.api.harness import ADMIN_EMAIL, Client, RpcError, running_xod
from xod.server.app import XodApp
from xod.store import SignInThrottle

ATTACKER = "127.0.0.2"
OWNER = "127.0.0.1"
GUESSES = 8


@contextlib.asynccontextmanager
async def connect_from(app: XodApp, source: str) -> AsyncIterator[Client]:
    url = f"ws://{app.config.host}:{app.port}/api/"
    async with websockets.connect(url, local_addr=(source, 0)) as ws:
        yield Client(ws)


async def test_guesses_from_one_address_do_not_delay_the_owner_from_another(
    tmp_path: Path,
) -> None:
    async with running_xod(tmp_path) as app:
        # The daemon's throttle with the delays' bases cut to 10 ms, so that the attacker can
        # fail many times within the test (the same rule, only faster).
        app.services.throttle = SignInThrottle(
            identity_base_delay=0.01, address_base_delay=0.01, account_base_delay=0.01
        )
        async with connect_from(app, ATTACKER) as attacker:
            failures = 0
            deadline = time.monotonic() + 20
            while failures < GUESSES:
                assert time.monotonic() < deadline, f"only {failures} guesses were checked"
                with pytest.raises(RpcError) as raised:
                    await attacker.sign_in(ADMIN_EMAIL, f"guess-{failures}")
                if raised.value.code == 3:
                    failures += 1
                else:  # throttled: wait for the delay, which doubles with every failure
                    await asyncio.sleep(0.05)
            # Now even the right password waits, from the address that guessed, and the
            # refusal says for how long: 10 ms doubled per failure, rounded up to seconds.
            with pytest.raises(RpcError) as raised:
                await attacker.sign_in()
            error = raised.value.error
            wait = error["data"]["retryAfter"]
            assert error["code"] == -32000 and wait in (1, 2)
            assert error["message"] == f"too fast authentication tries: retry in {wait} s"

            # The owner, from another address, signs in at once.
            async with connect_from(app, OWNER) as owner:
                user = await asyncio.wait_for(owner.sign_in(), 5)
                assert user["email"] == ADMIN_EMAIL
                assert owner.ws.local_address[0] == OWNER
                assert attacker.ws.local_address[0] == ATTACKER
