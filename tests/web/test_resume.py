"""The page keeps going when the connection drops: it says "reconnecting…", resumes each
subscription with `since` (only the net changes come back), and after a restart of xod (state
dir kept) it signs in again by its cookie and reloads its data, without reloading the page."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from playwright.async_api import Page, WebSocket

from tests.api.harness import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    FAST_CONNECTION,
    cheap_hasher,
    connect,
)
from tests.api.live_support import set_vm, user_vms
from tests.web.conftest import Dashboard, shot, sign_in, wait_synced, wait_text
from xod.server.app import ServerConfig, XodApp
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator
from xod.store import Store


class Frames:
    """What the page's WebSockets send and receive, decoded."""

    def __init__(self, page: Page) -> None:
        self.sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        page.on("websocket", self._watch)

    def _watch(self, ws: WebSocket) -> None:
        ws.on("framesent", lambda payload: self.sent.append(orjson.loads(payload)))
        ws.on("framereceived", lambda payload: self.received.append(orjson.loads(payload)))

    def clear(self) -> None:
        self.sent.clear()
        self.received.clear()

    def subscribes(self) -> list[dict[str, Any]]:
        return [m["params"] for m in self.sent if m.get("method") == "xod.subscribe"]

    def entered(self) -> int:
        return sum(
            len(m["params"]["enter"]) for m in self.received if m.get("method") == "xod.changes"
        )


async def test_a_dropped_connection_resumes_with_since(dashboard: Dashboard, page: Page) -> None:
    frames = Frames(page)
    await sign_in(page, dashboard.url)
    every = len(user_vms(dashboard.sim))
    await wait_text(page, "#vm-count", f"{every} VMs", "the whole table")
    loaded_at = await page.evaluate("window.xodPageLoadedAt")
    assert frames.entered() >= every
    frames.clear()

    dashboard.app.fanout.close_all(1001, "dropped by the test")
    await wait_text(page, "#status", "reconnecting…", "the page to say it reconnects")
    await shot(page, "12-reconnecting")
    ref = next(iter(user_vms(dashboard.sim)))
    vm_id = set_vm(dashboard.sim, ref, name_label="renamed-while-away")
    await wait_text(page, "#status", "live", "the page to be live again", 10_000)
    await wait_text(page, "[role=table]", "renamed-while-away", "the change made while away")
    await shot(page, "13-resumed")

    subscribes = frames.subscribes()
    assert subscribes and all("since" in s for s in subscribes), subscribes
    # Only what changed came back: not the snapshot of every VM again.
    assert frames.entered() < every, f"{frames.entered()} objects sent again on resume"
    assert await page.evaluate("window.xodPageLoadedAt") == loaded_at, "the page was reloaded"
    assert await page.locator(f"[data-id='{vm_id}']").count() == 1


def _config(state_dir: Path, port: int) -> ServerConfig:
    return ServerConfig(
        state_dir=state_dir,
        port=port,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        connection_options=FAST_CONNECTION,
        store=Store.open(state_dir, cheap_hasher()),
    )


@contextlib.asynccontextmanager
async def started(app: XodApp) -> AsyncIterator[XodApp]:
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def test_the_page_resumes_after_xod_restarts(tmp_path: Path, page: Page) -> None:
    async with Simulator(SimConfig(hosts=2, vms=12, templates=2, seed=11)) as sim:
        every = len(user_vms(sim))
        async with started(XodApp(_config(tmp_path, 0))) as first:
            async with connect(first) as admin:
                await admin.sign_in()
                server_id = await admin.call(
                    "server.add",
                    {"host": sim.master_url, "username": "root", "password": "password"},
                )
            await wait_synced(first, server_id)
            port = first.port
            assert port is not None
            url = f"http://127.0.0.1:{port}"
            await sign_in(page, url)
            await wait_text(page, "#vm-count", f"{every} VMs", "the whole table")
            loaded_at = await page.evaluate("window.xodPageLoadedAt")
        await wait_text(page, "#status", "reconnecting…", "the page to notice xod stopped")
        await shot(page, "14-xod-stopped")

        async with started(XodApp(_config(tmp_path, port))) as second:
            await wait_synced(second, server_id)
            await wait_text(page, "#status", "live", "the page to be live again", 10_000)
            await wait_text(page, "#vm-count", f"{every} VMs", "the table after the restart")
            ref = next(iter(user_vms(sim)))
            set_vm(sim, ref, name_label="renamed-after-restart")
            await wait_text(page, "[role=table]", "renamed-after-restart", "a change after it")
            await shot(page, "15-resumed-after-restart")
            assert await page.evaluate("window.xodPageLoadedAt") == loaded_at, "page reloaded"
