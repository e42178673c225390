"""The real Xen Orchestra client library (npm `xo-lib`) receives `all` notifications for
changes made on the simulator. Needs `npm install --prefix tests/js`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.api.live_support import pool_and_xod, set_vm, user_vms

SCRIPT = Path(__file__).resolve().parents[1] / "js" / "xo_lib_all.mjs"


async def test_xo_lib_receives_all_notifications(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path) as (sim, app):
        refs = sorted(user_vms(sim))
        deleted = sim.pool.db.tables["VM"][refs[1]]["uuid"]
        process = await asyncio.create_subprocess_exec(
            "node",
            str(SCRIPT),
            app.url,
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            "seen-by-xo-lib",
            deleted,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), 30)
        assert first == b"ready\n", (first, await process.stderr.read())
        renamed = set_vm(sim, refs[0], name_label="seen-by-xo-lib")
        sim.pool.db.delete("VM", refs[1])
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()
        report = orjson.loads(stdout.splitlines()[-1])
        expected = app.objects.get(renamed)

    assert report["ok"], report
    assert report["entered"] == expected  # the full object, as the cache holds it
    assert report["exitValue"] == 0
    assert set(report["kinds"]) <= {"enter", "exit"}
