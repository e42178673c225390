"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright, against a
running xod (real sockets) holding a simulated pool. Screenshots of each step go to
tests/web/screenshots/ (written at test time, not committed)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD, Client, connect, running_xod
from xod.server.app import XodApp
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).with_name("screenshots")
# Every browser wait is bounded by this unless a test says less.
WAIT_MS = 5000


@dataclass
class Dashboard:
    sim: Simulator
    app: XodApp
    state_dir: Path
    server_id: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.app.port}"


async def wait_synced(app: XodApp, server_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not app.pools.status(server_id).synced:
        assert time.monotonic() < deadline, f"the pool did not sync within {timeout} s"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def dashboard_on(
    state_dir: Path, sim_config: SimConfig, **xod_options: Any
) -> AsyncIterator[Dashboard]:
    async with Simulator(sim_config) as sim, running_xod(state_dir, **xod_options) as app:
        async with connect(app) as admin:
            await admin.sign_in()
            server_id = await admin.call(
                "server.add", {"host": sim.master_url, "username": "root", "password": "password"}
            )
        await wait_synced(app, server_id)
        yield Dashboard(sim, app, state_dir, server_id)


@pytest.fixture
def sim_config() -> SimConfig:
    """The pool of a dashboard test; a test module may override it."""
    return SimConfig(hosts=2, vms=12, templates=2, seed=11)


@pytest.fixture
async def dashboard(tmp_path: Path, sim_config: SimConfig) -> AsyncIterator[Dashboard]:
    async with dashboard_on(tmp_path, sim_config) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # A CSP violation (a blocked inline script or style) is an error of the page, though the
    # browser only logs it. (Other console errors are expected: a refused WebSocket while xod
    # restarts, the foreign pages' refusals.)
    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            errors.append(message.text)

    page.on("console", on_console)
    try:
        yield page
    finally:
        await context.close()
    assert not errors, f"the page raised: {errors}"


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


async def sign_in(
    page: Page, url: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> None:
    """Open the page, sign in with the form, wait for the live views."""
    await page.goto(url + "/")
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector(
        "#status, #signin-error:not(:empty)", timeout=WAIT_MS
    )  # signed in, or refused
    refused = await page.query_selector("#signin-error")
    assert refused is None, f"sign-in refused: {await refused.text_content()}"
    await wait_text(page, "#status", "live", "the connection status to read 'live'")


async def wait_text(
    page: Page, selector: str, text: str, what: str, timeout: int = WAIT_MS
) -> None:
    """Wait until the element's text contains `text`; fail saying what was waited for."""
    try:
        await page.wait_for_function(
            "([selector, text]) => document.querySelector(selector)?.textContent.includes(text)",
            arg=[selector, text],
            timeout=timeout,
        )
    except Exception as error:
        shown = await page.evaluate(
            "(selector) => document.querySelector(selector)?.textContent", selector
        )
        raise AssertionError(
            f"waited {timeout} ms for {what}; {selector} shows {shown!r}"
        ) from error


@contextlib.asynccontextmanager
async def admin_client(app: XodApp) -> AsyncIterator[Client]:
    async with connect(app) as client:
        await client.sign_in()
        yield client
