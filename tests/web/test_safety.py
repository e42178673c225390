"""What the page lets people do: a read-only user sees no action buttons; a page served from
another origin cannot use the user's cookie (no WebSocket, no write), unless that origin is in
`[http] allowed_origins`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from playwright.async_api import Page

from tests.api.harness import connect
from tests.api.live_support import user_vms
from tests.web.conftest import Dashboard, admin_client, dashboard_on, shot, sign_in, wait_text
from xod.sim.pool import SimConfig

READER_EMAIL = "reader@example.test"
READER_PASSWORD = "only looking, thanks"


async def test_a_read_only_user_sees_no_action_buttons(dashboard: Dashboard, page: Page) -> None:
    async with admin_client(dashboard.app) as admin:
        await admin.call(
            "user.create",
            {"email": READER_EMAIL, "password": READER_PASSWORD, "permission": "read"},
        )
    # The reader signs in with an API token of theirs (the form's other way).
    async with connect(dashboard.app) as reader:
        await reader.sign_in(READER_EMAIL, READER_PASSWORD)
        token = await reader.call("token.create", {"description": "dashboard test"})
    await page.goto(dashboard.url + "/")
    await page.get_by_label("API token").check()
    await page.get_by_label("Token", exact=True).fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await wait_text(page, "#status", "live", "the reader signed in by token")
    await wait_text(page, ".top .user", READER_EMAIL, "the reader's email")
    await wait_text(page, "#permission", "read", "the reader's permission")
    vm_id = next(r["uuid"] for r in user_vms(dashboard.sim).values())
    await page.click(f"[role=row][data-id='{vm_id}']")
    await page.locator("aside.details").wait_for(timeout=5000)
    await shot(page, "16-read-only-vm")
    for name in ("Start", "Stop", "Restart", "Suspend", "Snapshot", "Clone"):
        assert await page.get_by_role("button", name=name, exact=True).count() == 0, name
    await page.get_by_role("link", name="Hosts").click()
    await page.locator("table.grid tbody tr").first.wait_for(timeout=5000)
    await shot(page, "17-read-only-hosts")
    for name in ("Disable", "Enable", "Enter maintenance", "Leave maintenance"):
        assert await page.get_by_role("button", name=name).count() == 0, name


# A page of another site: it tries the WebSocket and, with `write`, a cookie-authenticated write
# (signing the user out), with `start`, a REST write (starting a VM); its title says whether
# the WebSocket opened.
FOREIGN_PAGE = """<!doctype html><title>waiting</title><script>
const query = new URLSearchParams(location.search);
const xod = query.get("xod");
const ws = new WebSocket(xod.replace("http", "ws") + "/api/");
ws.onopen = () => { document.title = "ws open"; };
ws.onerror = () => { document.title = "ws refused"; };
if (query.has("write"))
  fetch(xod + "/signout", {method: "POST", mode: "no-cors", credentials: "include"});
if (query.has("start"))  // a REST write: start a VM
  fetch(`${xod}/rest/v0/vms/${query.get("start")}/actions/start?sync=true`,
        {method: "POST", mode: "no-cors", credentials: "include"});
</script>"""


@contextlib.asynccontextmanager
async def foreign_site() -> AsyncIterator[str]:
    """A web server on another port of 127.0.0.1: another origin (though the same site, so
    SameSite=Strict alone would not keep the cookie from it)."""
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=FOREIGN_PAGE, content_type="text/html")

    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_another_origin_cannot_use_the_cookie(tmp_path: Path, page: Page) -> None:
    sim_config = SimConfig(hosts=1, vms=8, templates=1, seed=3)
    async with (
        foreign_site() as elsewhere,
        foreign_site() as allowed,
        dashboard_on(tmp_path, sim_config, allowed_origins=(allowed,)) as dashboard,
    ):
        halted = [
            r["uuid"] for r in user_vms(dashboard.sim).values() if r["power_state"] == "Halted"
        ]
        assert len(halted) >= 2, "the pool needs two halted VMs"
        await sign_in(page, dashboard.url)
        await page.goto(f"{elsewhere}/?xod={dashboard.url}&write&start={halted[0]}")
        await page.wait_for_function("document.title !== 'waiting'", timeout=5000)
        assert await page.title() == "ws refused"
        await shot(page, "18-foreign-origin-refused")

        # An origin of [http] allowed_origins may (a front end hosted elsewhere): its REST
        # write is done, which also shows the other page's was sent and refused.
        await page.goto(f"{allowed}/?xod={dashboard.url}&start={halted[1]}")
        await page.wait_for_function("document.title !== 'waiting'", timeout=5000)
        assert await page.title() == "ws open"
        deadline = time.monotonic() + 5
        while dashboard.app.objects.get(halted[1])["power_state"] != "Running":
            assert time.monotonic() < deadline, "the allowed origin's REST write was not done"
            await asyncio.sleep(0.05)
        assert dashboard.app.objects.get(halted[0])["power_state"] == "Halted"
        # Nor was the other write: the cookie still signs the user in.
        await page.goto(dashboard.url + "/")
        await wait_text(page, "#status", "live", "the dashboard, still signed in")
