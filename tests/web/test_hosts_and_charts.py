"""The other views: hosts with their actions and state, a host's charts (host.stats), pool
totals, storage usage bars, the pools → hosts → VMs tree, recent messages."""

from __future__ import annotations

from playwright.async_api import Page

from tests.api.live_support import user_vms
from tests.web.conftest import Dashboard, shot, sign_in, wait_text
from xod.sim.schema import new_record
from xod.sim.values import new_uuid, now


async def test_host_actions_and_the_other_views(dashboard: Dashboard, page: Page) -> None:
    await sign_in(page, dashboard.url)
    await page.get_by_role("link", name="Hosts").click()
    host_id = sorted(dashboard.app.objects.by_type("host"))[0]
    row = f"tr[data-id='{host_id}']"
    await wait_text(page, row, "enabled", "the host's state")
    await page.locator(row).get_by_role("button", name="Disable").click()
    await wait_text(page, row, "disabled", "the host disabled from the page")
    await wait_text(page, ".notice", "host.disable: done", "the action's notice")
    assert dashboard.app.objects.get(host_id)["enabled"] is False
    await shot(page, "19-host-disabled")
    await page.locator(row).get_by_role("button", name="Enable").click()
    await wait_text(page, row, "enabled", "the host enabled again")

    # A host's CPU and memory over the last minutes, from host.stats (the host's RRDs).
    await page.locator(row).get_by_role("button").first.click()
    await page.locator("aside.details figure[aria-label='CPU (%)'] canvas").wait_for(timeout=5000)
    await page.locator("aside.details figure[aria-label='Memory (GiB)'] canvas").wait_for()
    await shot(page, "20-host-details-chart")

    await page.get_by_role("link", name="Charts").click()
    await page.locator("main > .charts .uplot canvas").wait_for(timeout=5000)
    await wait_text(page, "main > .charts", "running VMs", "the pool totals' legend")
    await shot(page, "21-pool-charts")

    await page.get_by_role("link", name="Storage").click()
    meters = page.locator("[role=meter]")
    await meters.first.wait_for(timeout=5000)
    assert await meters.count() == len(dashboard.app.objects.by_type("SR"))
    await shot(page, "22-storage")

    await page.get_by_role("link", name="Pools").click()
    tree = page.get_by_role("region", name="Pools, hosts and VMs")
    await tree.wait_for(timeout=5000)
    summaries = await tree.locator("details details > summary").all_text_contents()
    counted = sum(int(s.split("·")[1].split()[0]) for s in summaries)
    assert counted == len(user_vms(dashboard.sim)), summaries
    await shot(page, "23-tree")

    # A message the pool raises shows in the recent messages at once.
    vm_uuid = next(iter(user_vms(dashboard.sim).values()))["uuid"]
    message = new_record(
        "message", uuid=new_uuid(), name="HA_POOL_OVERCOMMITTED", priority=2, cls="VM",
        obj_uuid=vm_uuid, timestamp=now(), body="the pool cannot tolerate a host failure",
    )  # fmt: skip
    dashboard.sim.pool.db.insert("message", message)
    await page.get_by_role("link", name="Messages").click()
    await wait_text(page, ".messages", "HA_POOL_OVERCOMMITTED", "the pool's new message")
    await wait_text(page, ".messages", "cannot tolerate a host failure", "its body")
    await shot(page, "24-messages")
