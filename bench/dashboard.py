"""The dashboard in a real browser on a big pool (issue #18). Prints one JSON object.

A simulated pool of 10k VMs with 200 changes/s (`python -m xod.sim --churn`, its own process),
xod in this process, Debian's chromium headless driven by Playwright. Figures:

- `first_table_s`: from navigating to the signed-in page until the VM table shows every VM
  (target ≤ 1.5 s); `first_table_page_ms` is the same seen from the page (navigation start).
  The page is the first subscriber of its VM scope: xod builds the scope then (scans its cache).
  `second_page_table_s`: the same for a second page while the first is open (the scope exists:
  a second dashboard, a reload while another one is open).
- `fps_streaming`, `fps_scrolling`: animation frames per second while the changes stream, idle
  and while the table scrolls three rows per frame (target ≥ 30); `long_frames` took > 50 ms.
- `dom_updates_per_frame_max`: DOM mutation batches in one frame (the page renders at most once
  per animation frame whatever the change rate).
- `changes_frames_per_s`: `xod.changes` frames the page received per second.
- `js_heap_used_mib`: the page's JS heap after a garbage collection.

    PYTHONPATH=. .venv/bin/python bench/dashboard.py [--vms 10000] [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"

# Counts frames for `seconds`, optionally scrolling the VM table; also the DOM mutation batches
# per frame.
MEASURE_FRAMES = """async ([seconds, scroll]) => {
  const viewport = document.querySelector(".viewport");
  let frames = 0, long = 0, mutations = 0, maxPerFrame = 0;
  const observer = new MutationObserver(() => { mutations++; });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true,
                                   attributes: true});
  const start = performance.now();
  let last = start;
  await new Promise((done) => {
    function frame(now) {
      frames++;
      if (now - last > 50) long++;
      last = now;
      maxPerFrame = Math.max(maxPerFrame, mutations);
      mutations = 0;
      if (scroll) {
        viewport.scrollTop = (viewport.scrollTop + 3 * 36) % (viewport.scrollHeight - 600);
      }
      if (now - start < seconds * 1000) requestAnimationFrame(frame); else done();
    }
    requestAnimationFrame(frame);
  });
  observer.disconnect();
  return {fps: frames / ((performance.now() - start) / 1000), long, maxPerFrame};
}"""


def start_sim(vms: int, rate: float) -> tuple[subprocess.Popen[str], str]:
    sim = subprocess.Popen(
        [sys.executable, "-m", "xod.sim", "--hosts", "3", "--vms", str(vms), "--templates", "20",
         "--churn", str(rate), "--seed", "1", "--json"],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
    )  # fmt: skip
    assert sim.stdout is not None
    return sim, orjson.loads(sim.stdout.readline())["master_url"]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD, connect, running_xod

    sim, master_url = start_sim(args.vms, args.rate)
    try:
        with tempfile.TemporaryDirectory() as state_dir:
            async with running_xod(Path(state_dir)) as app:
                async with connect(app) as admin:
                    await admin.sign_in()
                    server_id = await admin.call(
                        "server.add",
                        {"host": master_url, "username": "root", "password": "password"},
                    )
                deadline = time.monotonic() + 120
                while not app.pools.status(server_id).synced:
                    assert time.monotonic() < deadline, "the pool did not sync in 120 s"
                    await asyncio.sleep(0.1)
                url = f"http://127.0.0.1:{app.port}"
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(
                        executable_path=CHROMIUM, headless=True
                    )
                    return await measure(browser, url, ADMIN_EMAIL, ADMIN_PASSWORD, args)
    finally:
        sim.terminate()
        sim.wait(timeout=10)


async def measure(browser: Any, url: str, email: str, password: str, args: Any) -> dict[str, Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    signed = await context.request.post(
        url + "/signin", data={"email": email, "password": password}
    )
    assert signed.ok, await signed.text()
    page = await context.new_page()
    changes = 0

    def count(payload: str | bytes) -> None:
        nonlocal changes
        if b'"xod.changes"' in (payload if isinstance(payload, bytes) else payload.encode()):
            changes += 1

    page.on("websocket", lambda ws: ws.on("framereceived", count))
    first_table = await time_to_full_table(page, url, args.vms)
    first_table_page_ms = await page.evaluate("performance.now()")
    second = await context.new_page()
    second_table = await time_to_full_table(second, url, args.vms)
    await second.close()

    before, counted_at = changes, time.monotonic()
    streaming = await page.evaluate(MEASURE_FRAMES, [args.seconds, False])
    scrolling = await page.evaluate(MEASURE_FRAMES, [args.seconds, True])
    rate = (changes - before) / (time.monotonic() - counted_at)

    cdp = await context.new_cdp_session(page)
    await cdp.send("HeapProfiler.collectGarbage")
    heap = await cdp.send("Runtime.getHeapUsage")
    await context.close()
    return {
        "vms": args.vms,
        "changes_per_s": args.rate,
        "first_table_s": round(first_table, 3),
        "first_table_page_ms": round(first_table_page_ms),
        "second_page_table_s": round(second_table, 3),
        "fps_streaming": round(streaming["fps"], 1),
        "fps_scrolling": round(scrolling["fps"], 1),
        "long_frames": streaming["long"] + scrolling["long"],
        "dom_updates_per_frame_max": max(streaming["maxPerFrame"], scrolling["maxPerFrame"]),
        "changes_frames_per_s": round(rate, 1),
        "js_heap_used_mib": round(heap["usedSize"] / 2**20, 1),
    }


async def time_to_full_table(page: Any, url: str, vms: int) -> float:
    started = time.monotonic()
    await page.goto(url + "/#/vms")
    await page.wait_for_function(
        "(n) => document.querySelector('#vm-count')?.textContent === `${n} VMs`"
        " && document.querySelectorAll('[role=row][data-id]').length > 0",
        arg=vms,
        timeout=60_000,
        polling="raf",
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0, help="pool changes per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="each frame-rate window")
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args))).decode())


if __name__ == "__main__":
    main()
