"""The reported attack on the real process: a `read` user's filters with regexps that take a
backtracking engine exponential time (`xo.getAllObjects`, and `xod.subscribe`, where the filter
runs on every change) are answered at once, and meanwhile the daemon keeps answering another
client and /healthz, and stops promptly on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import aiohttp
import websockets

from tests.api.harness import Client, RpcError
from tests.api.live_support import is_changes, next_message
from tests.daemon.helpers import XodProcess
from tests.daemon.test_demo import wait_ready

ANSWER_TIMEOUT = 10.0  # RE2 answers in milliseconds; a blocked daemon never does
LONG = 2_000  # "a" * LONG + "!" would take /(a+)+$/ 2**LONG steps to reject by backtracking


async def test_pathological_regexps_leave_the_daemon_serving(tmp_path: Path) -> None:
    xod = XodProcess(["--demo", "--listen", "127.0.0.1:0"], tmp_path)
    try:
        banner = xod.wait_stdout(r"URL:\s+(\S+)\n(?:.*\n)*?\s+user:\s+(\S+)\n\s+password:\s+(\S+)")
        url, email, password = banner.groups()
        ws_url = url.replace("http", "ws", 1) + "/api/"
        async with (
            aiohttp.ClientSession() as http,
            websockets.connect(ws_url) as admin_ws,
            websockets.connect(ws_url) as reader_ws,
        ):
            await wait_ready(http, url)
            admin, reader = Client(admin_ws), Client(reader_ws)
            await admin.call("session.signInWithPassword", {"email": email, "password": password})
            read_user = {"email": "r@x.test", "password": "pw-r", "permission": "read"}
            await admin.call("user.create", read_user)
            await reader.sign_in("r@x.test", "pw-r")
            await reader.call("xod.setAllNotifications", {"enabled": False})

            async def still_serving() -> None:
                async with asyncio.timeout(ANSWER_TIMEOUT):  # waits for: /healthz, another client
                    async with http.get(f"{url}/healthz") as response:
                        assert response.status == 200
                    assert (await admin.call("session.getUser"))["email"] == email

            vms = await admin.call("xo.getAllObjects", {"filter": {"type": "VM"}})
            first, second = sorted(vms)[:2]
            async with asyncio.timeout(ANSWER_TIMEOUT):  # waits for: the filtered answer
                found = await reader.call(
                    "xo.getAllObjects", {"filter": f"id:{first} id:/^([0-9a-f-]+)+Z/"}
                )
            assert found == {}
            await still_serving()

            async with asyncio.timeout(ANSWER_TIMEOUT):  # waits for: the subscription's answer
                subscription = (
                    await reader.call("xod.subscribe", {"filter": "name_label:/^(a+)+$/"})
                )["subscription"]
            # Every change is filtered: one the pattern rejects, then one it accepts.
            await admin.call("vm.set", {"id": first, "name_label": "a" * LONG + "!"})
            await admin.call("vm.set", {"id": second, "name_label": "a" * LONG})
            entered: set[str] = set()
            while second not in entered:
                changes = await next_message(reader, is_changes(subscription), ANSWER_TIMEOUT)
                entered.update(changes["params"]["enter"])
            assert entered == {second}
            await still_serving()

            # Syntax RE2 cannot run: a clear invalid-parameters error, with the position.
            try:
                await reader.call("xo.getAllObjects", {"filter": r"/(\w+)\1/"})
            except RpcError as error:
                assert error.code == 10
                [problem] = error.data["errors"]
                assert re.search(r"backreference \\1 is not supported", problem["message"])
                assert problem["params"] == {"position": 6}
            else:
                raise AssertionError("a backreference was accepted")

        started = time.monotonic()
        xod.signal(signal.SIGTERM)
        assert xod.wait(10) == 0
        assert time.monotonic() - started < 10
    finally:
        xod.stop()
