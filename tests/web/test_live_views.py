"""The live views: a change made through the JSON-RPC API shows on the page within a second, a
task's progress bar moves, the search filter narrows the table (server side) and shows parse
errors, and the URL keeps the view and the filter."""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Page

from tests.api.live_support import user_vms
from tests.web.conftest import Dashboard, admin_client, shot, sign_in, wait_text
from xod.sim.pool import SimConfig


def vm_ids(dashboard: Dashboard, power_state: str) -> list[str]:
    return sorted(
        r["uuid"] for r in user_vms(dashboard.sim).values() if r["power_state"] == power_state
    )


def row_state(vm_id: str) -> str:
    return f"[role=row][data-id='{vm_id}'] .c-state"


async def test_a_vm_started_through_the_api_shows_running_within_a_second(
    dashboard: Dashboard, page: Page
) -> None:
    await sign_in(page, dashboard.url)
    vm_id = vm_ids(dashboard, "Halted")[0]
    await wait_text(page, row_state(vm_id), "Halted", "the halted VM's row")
    async with admin_client(dashboard.app) as client:
        await client.call("vm.start", {"id": vm_id})
        started = time.monotonic()
        await wait_text(page, row_state(vm_id), "Running", "the VM's badge to read Running", 1000)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"the page showed the change after {elapsed:.2f} s"
    await shot(page, "05-vm-started-through-the-api")


class TestSlowOperations:
    @pytest.fixture
    def sim_config(self) -> SimConfig:
        # Lifecycle operations take 3 s: their task's progress moves in steps meanwhile.
        return SimConfig(hosts=2, vms=12, templates=2, seed=11, op_duration=3.0)

    async def test_an_action_shows_its_task_progress_moving(
        self, dashboard: Dashboard, page: Page
    ) -> None:
        await sign_in(page, dashboard.url)
        vm_id = vm_ids(dashboard, "Halted")[0]
        await page.click(f"[role=row][data-id='{vm_id}']")
        await page.get_by_role("button", name="Start", exact=True).click()
        bar = page.locator(".notice [role=progressbar]")
        await bar.wait_for(timeout=5000)
        seen: list[int] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(set(seen) - {0}) < 2:
            if await bar.count():
                seen.append(int(await bar.get_attribute("aria-valuenow") or 0))
            if len(seen) == 3:
                await shot(page, "06-task-progress")
            await page.wait_for_timeout(100)
        assert len(set(seen) - {0, 100}) >= 2, f"the progress bar did not move: {seen}"
        assert seen == sorted(seen), f"the progress went back: {seen}"
        # The task list shows it too while it runs.
        await page.get_by_role("link", name="Tasks").click()
        await wait_text(page, "table.tasks", "VM.start", "the task in the task list")
        await shot(page, "07-task-list")
        await wait_text(page, ".notice", "vm.start: done", "the action to end")
        await page.get_by_role("link", name="VMs").click()
        await wait_text(page, row_state(vm_id), "Running", "the started VM's badge")
        await shot(page, "08-action-done")

    async def test_a_failing_action_says_why(self, dashboard: Dashboard, page: Page) -> None:
        await sign_in(page, dashboard.url)
        vm_id = vm_ids(dashboard, "Running")[0]
        await page.click(f"[role=row][data-id='{vm_id}']")
        # Its clean shutdown blocked in the pool: the page does not know, xod refuses.
        ref = dashboard.sim.pool.db.by_uuid("VM", vm_id)
        dashboard.sim.pool.db.update("VM", ref, {"blocked_operations": {"clean_shutdown": "x"}})
        deadline = time.monotonic() + 5
        while not dashboard.app.objects.get(vm_id)["blockedOperations"]:
            assert time.monotonic() < deadline, "xod never saw the blocked operation"
            await asyncio.sleep(0.02)
        await page.get_by_role("button", name="Stop", exact=True).click()
        await wait_text(page, ".notice-failed", "failed", "the failed action's notice")
        text = await page.locator(".notice-failed").text_content()
        assert "vm.stop" in (text or "") and len(text or "") > len("vm.stop: failed — "), text
        await shot(page, "09-action-failed")


async def test_the_filter_narrows_the_table_and_shows_parse_errors(
    dashboard: Dashboard, page: Page
) -> None:
    await sign_in(page, dashboard.url)
    every = len(user_vms(dashboard.sim))
    running = len(vm_ids(dashboard, "Running"))
    assert 0 < running < every
    await wait_text(page, "#vm-count", f"{every} VMs", "the whole table")
    search = page.get_by_label("Filter (complex-matcher)")
    await search.fill("power_state:Running")
    await search.press("Enter")
    await wait_text(page, "#vm-count", f"{running} VMs", "the table narrowed to running VMs")
    states = await page.locator("[role=row][data-id] .c-state").all_text_contents()
    assert {s.strip() for s in states} == {"Running"}
    assert "q=power_state%3ARunning" in page.url and "#/vms" in page.url
    await shot(page, "10-filter-running")

    # The bookmarked URL opens the same view, filtered.
    await page.goto(page.url)
    await page.reload()
    await wait_text(page, "#vm-count", f"{running} VMs", "the filtered table after a reload")
    assert await search.input_value() == "power_state:Running"

    await search.fill("name_label:(web")
    await search.press("Enter")
    await wait_text(page, "#search-error", "at position", "the parse error next to the box")
    error = await page.locator("#search-error").text_content()
    assert "at position 10" in (error or ""), error
    assert await search.get_attribute("aria-invalid") == "true"
    await shot(page, "11-filter-parse-error")
