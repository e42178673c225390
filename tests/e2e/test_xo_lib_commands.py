"""The real Xen Orchestra client library (npm `xo-lib`) runs vm.start, vm.stop and vm.clone
through xod against the simulator, and receives the matching `all` notifications.

Needs `npm install --prefix tests/js` (done by .ci/run)."""

from __future__ import annotations

from pathlib import Path

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.api.test_commands_support import Env, commands_env
from tests.e2e.node import run_node_script


async def _run_commands(env: Env, vm_id: str) -> dict:
    report = await run_node_script(
        "xo_lib_commands.mjs", env.app.url, ADMIN_EMAIL, ADMIN_PASSWORD, vm_id
    )
    assert report["ok"], report
    return report


async def test_xo_lib_runs_vm_actions(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        report = await _run_commands(env, vm_id)

        assert report["start"]["result"] is True
        assert report["stop"]["result"] is True
        clone_id = report["clone"]["result"]
        assert env.app.objects.get(clone_id)["name_label"] == "cloned by xo-lib"
        assert env.sim_record("VM", clone_id)["name_label"] == "cloned by xo-lib"
        assert env.app.objects.get(vm_id)["power_state"] == "Halted"
        # xo-lib surfaces XO's error code and data.
        assert report["badPowerState"]["code"] == 13
        assert report["badPowerState"]["data"] == {
            "objectId": vm_id,
            "expected": "running",
            "actual": "halted",
        }


async def test_xo_lib_receives_all_notifications_for_vm_actions(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        report = await _run_commands(env, vm_id)

        assert report["start"]["notified"] == {
            "id": vm_id,
            "power_state": "Running",
            "name_label": env.app.objects.get(vm_id)["name_label"],
        }
        assert report["stop"]["notified"]["power_state"] == "Halted"
        clone_id = report["clone"]["result"]
        assert report["clone"]["notified"] == {
            "id": clone_id,
            "power_state": "Halted",
            "name_label": "cloned by xo-lib",
        }
