"""`xod serve --config FILE` against a simulator started separately: readiness, SIGHUP reload
without dropping clients, XAPI logout on SIGTERM, and no secret in the logs."""

from __future__ import annotations

import asyncio
import signal
import stat
import time
from pathlib import Path

import aiohttp
import websockets

from tests.daemon.helpers import NotifyListener, XodProcess
from tests.daemon.test_demo import metric_values, rpc, wait_ready
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator
from xod.store import Store

XAPI_PASSWORD = "xapi-Secret-7f3a9c"
ADMIN_PASSWORD = "admin-Secret-c41d2e"


def write_config(path: Path, state_dir: Path, level: str, max_clients: int = 100) -> None:
    path.write_text(
        f"""
[http]
listen = "127.0.0.1:0"
shutdown_timeout = 8

[state]
dir = "{state_dir}"

[log]
level = "{level}"
format = "json"

[limits]
max_clients = {max_clients}

[admin]
email = "ops@example.org"
password = "{ADMIN_PASSWORD}"
"""
    )


async def test_config_file_against_a_simulator(tmp_path: Path, notify_listener: NotifyListener):
    state_dir = tmp_path / "state"
    store = Store.open(state_dir)
    config_path = tmp_path / "config.toml"
    write_config(config_path, state_dir, "info")
    async with Simulator(
        SimConfig(hosts=2, vms=10, password=XAPI_PASSWORD), listen="127.0.0.5"
    ) as sim:
        store.servers.add(sim.master_url, "root", XAPI_PASSWORD, label="lab")
        store.close()
        xod = XodProcess(["--config", str(config_path)], tmp_path, notify=notify_listener)
        try:
            notify_listener.wait_for("READY")
            url = xod.url()
            async with aiohttp.ClientSession() as http:
                await wait_ready(http, url)
                sessions_while_running = set(sim.pool.records("session"))
                assert sessions_while_running
                async with websockets.connect(url.replace("http", "ws", 1) + "/api/") as ws:
                    await rpc(
                        ws,
                        "session.signInWithPassword",
                        {"email": "ops@example.org", "password": ADMIN_PASSWORD},
                    )
                    assert not [e for e in xod.log_events() if e["level"] == "debug"]

                    # SIGHUP: the new log level applies, the client stays connected.
                    write_config(config_path, state_dir, "debug", max_clients=1)
                    xod.signal(signal.SIGHUP)
                    notify_listener.wait_for("RELOADING")
                    reloaded = xod.wait_log("configuration reloaded")
                    assert set(reloaded["changed"]) == {"log.level", "limits.max_clients"}
                    notify_listener.wait_for("STATUS", "configuration reloaded")
                    objects = await rpc(ws, "xo.getAllObjects", {"filter": "type:host"}, 2)
                    assert len(objects) == 2
                    # limits.max_clients = 1 now: a second client is refused.
                    async with http.get(
                        url.replace("http", "ws", 1) + "/api/",
                        headers={
                            "Upgrade": "websocket",
                            "Connection": "Upgrade",
                            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                            "Sec-WebSocket-Version": "13",
                        },
                    ) as refused:
                        assert refused.status == 503
                    # An invalid file on SIGHUP: an error naming the key, the old settings stay.
                    config_path.write_text('[log]\nlevel = "loud"\n')
                    xod.signal(signal.SIGHUP)
                    failure = xod.wait_log("reload failed, configuration unchanged")
                    assert "log.level" in failure["error"]
                    assert xod.proc.poll() is None
                    await rpc(ws, "session.getUser", {}, 3)
                    assert [e for e in xod.log_events() if e["level"] == "debug"]

                    started = time.monotonic()
                    xod.signal(signal.SIGTERM)
                    # In a thread: the simulator, in this process, must answer the logout.
                    assert await asyncio.to_thread(xod.wait, 10) == 0
                    assert time.monotonic() - started < 5
            # Its XAPI session was logged out.
            assert not sessions_while_running & set(sim.pool.records("session"))
            logs = xod.stderr
            for secret in (XAPI_PASSWORD, ADMIN_PASSWORD, *sessions_while_running):
                assert secret not in logs
            assert ADMIN_PASSWORD not in xod.stdout  # chosen by the operator: not echoed
            reopened = Store.open(state_dir)  # the store was closed cleanly and is intact
            try:
                assert reopened.users.get_by_email("ops@example.org") is not None
            finally:
                reopened.close()
        finally:
            xod.stop()


def read_password_file(path: Path) -> tuple[int, str]:
    """The file's permission bits and the password in it."""
    return stat.S_IMODE(path.stat().st_mode), path.read_text().strip()


async def test_metrics_and_readiness_without_pools(tmp_path: Path) -> None:
    xod = XodProcess(["--listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "s")], tmp_path)
    try:
        url = xod.url()
        async with aiohttp.ClientSession() as http:
            ready = await wait_ready(http, url, timeout=5)
            assert ready == {"ready": True, "pools": []}
            async with http.get(f"{url}/metrics") as response:
                text = await response.text()
            assert metric_values(text, "xod_clients_connected") == {"": 0.0}
            assert "process_resident_memory_bytes" in text
        # The generated admin password goes to a file only its owner can read (under systemd,
        # stdout and stderr both end in the journal); only the file's path is shown.
        path = xod.wait_stdout(r"created admin admin@admin.net; its generated password is in (\S+)")
        password_file = Path(path.group(1))
        assert password_file == tmp_path / "s" / "initial-admin-password"
        mode, password = read_password_file(password_file)
        assert mode == 0o600
        assert len(password) >= 20
        assert password not in xod.stdout and password not in xod.stderr
        assert xod.wait_log("first admin created", file=str(password_file))
        store = Store.open(tmp_path / "s")
        try:
            assert store.users.verify_password("admin@admin.net", password) is not None
        finally:
            store.close()
    finally:
        xod.stop()
    assert xod.proc.returncode == 0
