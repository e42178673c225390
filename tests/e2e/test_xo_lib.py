"""The real Xen Orchestra client library (npm `xo-lib`) against xod and the simulator.

Needs `npm install --prefix tests/js` (done by .ci/run); node runs tests/js/xo_lib_client.mjs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD, connect, running_xod
from tests.e2e.node import run_node_script
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator


async def test_xo_lib_password_and_token_sign_in(tmp_path: Path) -> None:
    async with (
        Simulator(SimConfig(hosts=2, vms=10, templates=4, seed=3)) as sim,
        running_xod(tmp_path) as app,
    ):
        async with connect(app) as admin:
            await admin.sign_in()
            server_id = await admin.call(
                "server.add", {"host": sim.master_url, "username": "root", "password": "password"}
            )
            for _ in range(200):
                if app.pools.status(server_id).synced:
                    break
                await asyncio.sleep(0.05)
        expected_vms = sorted(i for i, o in app.objects.objects.items() if o["type"] == "VM")

        report = await run_node_script("xo_lib_client.mjs", app.url, ADMIN_EMAIL, ADMIN_PASSWORD)

    assert report["ok"], report
    assert report["passwordUser"]["email"] == ADMIN_EMAIL
    assert report["passwordUser"]["permission"] == "admin"
    assert report["tokenUser"] == report["passwordUser"]
    assert report["methodCount"] == len(app.registry)
    assert report["getAllObjectsInfo"]["params"]["ndjson"] == {"type": "boolean", "optional": True}
    assert report["vmIds"] == expected_vms and report["vmTypes"] == ["VM"]
    assert report["limitedCount"] == 2
    assert report["invalidParamsError"]["code"] == 10
    assert report["invalidParamsError"]["data"]["errors"][0]["params"] == {
        "additionalProperty": "bogus"
    }
