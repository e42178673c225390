"""The dashboard shows only the actions xod would accept from its user: a user whose only
rights are an operator role on one VM and a viewer role on another gets the power buttons on
the first (not Clone, which needs administrate), none on the second, none on the hosts."""

from __future__ import annotations

from playwright.async_api import Page

from tests.api.live_support import user_vms
from tests.web.conftest import WAIT_MS, Dashboard, admin_client, shot, sign_in, wait_text

EMAIL = "operator@example.test"
PASSWORD = "starts and stops"
POWER = ("Start", "Stop", "Restart", "Suspend", "Snapshot")


async def test_buttons_follow_the_users_acls(dashboard: Dashboard, page: Page) -> None:
    records = sorted(user_vms(dashboard.sim).values(), key=lambda r: r["uuid"])
    operated, viewed = records[0]["uuid"], records[1]["uuid"]
    async with admin_client(dashboard.app) as admin:
        user_id = await admin.call(
            "user.create", {"email": EMAIL, "password": PASSWORD, "permission": "none"}
        )
        for object_id, role in ((operated, "operator"), (viewed, "viewer")):
            await admin.call("acl.add", {"subject": user_id, "object": object_id, "action": role})
    await sign_in(page, dashboard.url, EMAIL, PASSWORD)
    await wait_text(page, "#permission", "none", "the user's level")
    await page.click(f"[role=row][data-id='{operated}']")
    # The grants come with the first acl.getCurrentPermissions answer.
    await page.get_by_role("button", name="Snapshot", exact=True).wait_for(timeout=WAIT_MS)
    await shot(page, "30-operator-vm")
    for name in POWER:
        assert await page.get_by_role("button", name=name, exact=True).count() == 1, name
    assert await page.get_by_role("button", name="Clone", exact=True).count() == 0
    await page.click(f"[role=row][data-id='{viewed}']")
    await wait_text(page, "aside.details h2", records[1]["name_label"], "the viewed VM's details")
    await shot(page, "31-viewer-vm")
    for name in (*POWER, "Clone"):
        assert await page.get_by_role("button", name=name, exact=True).count() == 0, name
    await page.get_by_role("link", name="Hosts").click()
    # (Hosts it may not see are not listed: the table may be empty.)
    await page.locator("table.grid caption", has_text="Hosts").wait_for(timeout=WAIT_MS)
    for name in ("Disable", "Enable", "Enter maintenance", "Leave maintenance"):
        assert await page.get_by_role("button", name=name).count() == 0, name
