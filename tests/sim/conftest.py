"""Fixtures for driving the simulator over real loopback sockets.

The simulator runs in the test's own event loop; blocking clients (the official `XenAPI`
package) run in a worker thread through `asyncio.to_thread`, so fault controls can be called
directly from the test coroutine.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import xmlrpc.client
from typing import Any

import pytest
import XenAPI

from xod.sim.simulator import Simulator


@pytest.fixture
def socket_dir() -> Any:
    """A private directory whose path has no `_`: XenAPI's UDSTransport maps `_` in the URL
    host to `/`, so `/tmp/xodsim123/s.sock` is reachable as `http://_tmp_xodsim123_s.sock/`."""
    while True:
        path = f"/tmp/xodsim{random.randrange(10**9)}"
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
            break
    yield path
    shutil.rmtree(path, ignore_errors=True)


class TimeoutTransport(xmlrpc.client.Transport):
    """The stdlib transport with a socket timeout, for tests that expect a host to hang."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: Any) -> Any:
        connection = super().make_connection(host)
        connection.timeout = self._timeout
        return connection


def xenapi_login(url: str, sim: Simulator, **session_kwargs: Any) -> XenAPI.Session:
    """Blocking: a logged-in XenAPI session (run it in a thread)."""
    session = XenAPI.Session(url, **session_kwargs)
    session.xenapi.login_with_password(
        sim.pool.config.username, sim.pool.config.password, "2.21", "xod-tests"
    )
    return session
