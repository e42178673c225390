"""`xod serve --demo` as a user runs it: the real process, its banner, its endpoints, its
sd_notify messages, a real WebSocket client, then SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import aiohttp
import orjson
import websockets

from tests.daemon.helpers import NotifyListener, XodProcess


async def rpc(ws, method: str, params: dict, request_id: int = 1):
    """Call `method`; its reply, skipping the `all` notifications that may come first."""
    await ws.send(
        orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    )
    async with asyncio.timeout(20):  # the reply to `method`
        while True:
            reply = orjson.loads(await ws.recv())
            if reply.get("id") == request_id:
                break
    assert "error" not in reply, reply
    return reply["result"]


async def wait_ready(http: aiohttp.ClientSession, url: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        async with http.get(f"{url}/readyz") as response:
            body = await response.json()
            if response.status == 200:
                return body
        assert time.monotonic() < deadline, f"not ready in {timeout} s: {body}"
        await asyncio.sleep(0.1)


def metric_values(text: str, name: str) -> dict[str, float]:
    """{label text: value} of every sample of one metric."""
    values = {}
    for line in text.splitlines():
        match = re.match(rf"^{name}(\{{.*\}})? (\S+)$", line)
        if match:
            values[match.group(1) or ""] = float(match.group(2))
    return values


async def test_demo_end_to_end(tmp_path: Path, notify_listener: NotifyListener) -> None:
    xod = XodProcess(
        ["--demo", "--listen", "127.0.0.1:0", "--set", "demo.churn=20"],
        tmp_path,
        env={"WATCHDOG_USEC": "300000"},
        notify=notify_listener,
    )
    try:
        ready = notify_listener.wait_for("READY")
        assert ready["MAINPID"] == str(xod.proc.pid)
        banner = xod.wait_stdout(r"URL:\s+(\S+)\n(?:.*\n)*?\s+user:\s+(\S+)\n\s+password:\s+(\S+)")
        url, email, password = banner.groups()
        assert url == xod.url()
        assert url.startswith("http://127.0.0.1:")
        state_dir = Path(re.search(r"state:\s+(\S+)", xod.stdout).group(1))
        assert await asyncio.to_thread(state_dir.is_dir)
        notify_listener.wait_for("WATCHDOG", timeout=5)

        # Every request bounded: a frozen xod must fail the test, not hang it.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.get(f"{url}/healthz") as response:
                assert response.status == 200
            # The banner names the dashboard, and it opens at once.
            assert f"dashboard: {url}/\n" in xod.stdout
            async with http.get(f"{url}/") as response:
                assert response.status == 200
                assert 'src="/web/app.js"' in await response.text()
            readiness = await wait_ready(http, url)
            assert [p["synced"] for p in readiness["pools"]] == [True]

            ws_url = url.replace("http", "ws", 1) + "/api/"
            async with websockets.connect(ws_url) as ws:
                user = await rpc(
                    ws, "session.signInWithPassword", {"email": email, "password": password}
                )
                assert user["email"] == email
                objects = await rpc(ws, "xo.getAllObjects", {}, 2)
                types = [o["type"] for o in objects.values()]
                assert types.count("host") == 3
                assert types.count("VM") >= 50
                # Churn: the cache moves without anyone asking.
                async with http.get(f"{url}/metrics") as response:
                    first = metric_values(await response.text(), "xod_cache_revision")[""]
                deadline = time.monotonic() + 10
                while True:
                    await asyncio.sleep(0.2)
                    async with http.get(f"{url}/metrics") as response:
                        assert response.headers["Content-Type"].startswith("text/plain")
                        text = await response.text()
                    if metric_values(text, "xod_cache_revision")[""] > first:
                        break
                    assert time.monotonic() < deadline, "the demo pool does not change"
                vms = {
                    k: v for k, v in metric_values(text, "xod_objects").items() if 'type="VM"' in k
                }
                assert sum(vms.values()) >= 50
                assert list(metric_values(text, "xod_pool_connected").values()) == [1.0]
                assert list(metric_values(text, "xod_pool_synced").values()) == [1.0]
                assert metric_values(text, "xod_clients_connected")[""] == 1.0
                # Every response and change notification written to the client is counted.
                frames_sent = metric_values(text, "xod_frames_sent_total")[""]
                assert frames_sent >= 2
                assert metric_values(text, "xod_bytes_sent_total")[""] > frames_sent
                assert metric_values(text, "xod_slow_clients_closed_total") == {"": 0.0}
                calls = metric_values(text, "xod_rpc_calls_total")
                assert calls['{method="session.signInWithPassword",outcome="success"}'] == 1.0
                assert any(
                    k.startswith('{method="xo.getAllObjects"')
                    for k in metric_values(text, "xod_rpc_duration_seconds_count")
                )
                assert sum(metric_values(text, "xod_event_batches_total").values()) > 0
                assert metric_values(text, "xod_event_batch_lag_seconds_count")

                # SIGTERM: STOPPING=1, the client is told the server goes away, exit 0 quickly.
                started = time.monotonic()
                xod.signal(signal.SIGTERM)
                notify_listener.wait_for("STOPPING", timeout=5)
                try:
                    async with asyncio.timeout(10):
                        while True:  # change notifications may come first
                            await ws.recv()
                except websockets.ConnectionClosed as closed:
                    assert closed.rcvd is not None and closed.rcvd.code == 1001
            assert xod.wait(10) == 0
            assert time.monotonic() - started < 10

        assert not await asyncio.to_thread(state_dir.exists)  # the demo's temporary state is gone
        events = xod.log_events()  # every line is JSON (stderr is not a terminal)
        call = next(e for e in events if e["event"] == "call" and e["method"] == "xo.getAllObjects")
        assert call["user"] and call["outcome"] == "success" and call["duration"] >= 0
        assert any(e["event"] == "stopped" for e in events)
        # The password was shown once, on stdout, and never logged.
        assert password not in xod.stderr
        assert xod.stdout.count(password) == 1
    finally:
        xod.stop()
