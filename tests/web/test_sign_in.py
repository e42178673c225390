"""Signing in to the dashboard, seeing the user, signing out."""

from __future__ import annotations

from playwright.async_api import Page

from tests.api.harness import ADMIN_EMAIL
from tests.api.live_support import user_vms
from tests.web.conftest import Dashboard, shot, sign_in, wait_text


async def test_sign_in_shows_the_user_and_the_live_vm_table(
    dashboard: Dashboard, page: Page
) -> None:
    response = await page.goto(dashboard.url + "/")
    assert response is not None
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    await page.get_by_role("button", name="Sign in").wait_for(timeout=5000)
    await shot(page, "01-sign-in-form")

    # Another account: a failure throttles the next attempts of the account that failed.
    await page.get_by_label("Email", exact=True).fill("nobody@example.test")
    await page.get_by_label("Password", exact=True).fill("wrong password")
    await page.get_by_role("button", name="Sign in").click()
    await wait_text(page, "#signin-error", "invalid credentials", "the sign-in error")
    await shot(page, "02-sign-in-refused")

    await sign_in(page, dashboard.url)
    await wait_text(page, ".top .user", ADMIN_EMAIL, "the signed-in user's email")
    await wait_text(page, "#permission", "admin", "the user's permission")
    vms = len(user_vms(dashboard.sim))
    await wait_text(page, "#vm-count", f"{vms} VMs", "the VM table to hold every user VM")
    await shot(page, "03-signed-in-vm-table")

    # Keyboard: a focused row opens its details with Enter.
    await page.focus("[role=row][data-id]")
    await page.keyboard.press("Enter")
    await page.locator("aside.details").wait_for(timeout=5000)
    await page.get_by_role("button", name="Close the details").click()

    # A phone's width, dark: nothing wider than the screen.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.emulate_media(color_scheme="dark")
    await page.locator("[role=row][data-id]").first.wait_for(timeout=5000)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(20, 23, 28)", background
    await shot(page, "03b-phone-dark")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.emulate_media(color_scheme="light")

    cookies = {c["name"]: c for c in await page.context.cookies()}
    cookie = cookies["authenticationToken"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
    assert await page.evaluate("document.cookie") == "", "a script can read the token"

    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("button", name="Sign in").wait_for(timeout=5000)
    assert "authenticationToken" not in {c["name"] for c in await page.context.cookies()}
    await page.reload()
    await page.get_by_role("button", name="Sign in").wait_for(timeout=5000)
    await shot(page, "04-signed-out")
