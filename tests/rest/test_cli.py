"""`xod-cli rest …` against xod: xo-cli's `rest` habits with the registered token."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson

from tests.cli.helpers import CLI, lab


async def test_rest_verbs(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        await env.register()
        vms = await env.client.call("xo.getAllObjects", {"filter": {"type": "VM"}})
        result = await env.cli("rest", "get", "vms", "fields=name_label,power_state")
        assert result.code == 0, result
        listed = result.json()
        assert sorted(o["name_label"] for o in listed) == sorted(
            v["name_label"] for v in vms.values()
        )
        result = await env.cli("rest", "get", "vms", "fields=name_label", "--ndjson")
        lines = [orjson.loads(line) for line in result.stdout.splitlines()]
        assert len(lines) == len(vms) and all(set(o) == {"name_label", "href"} for o in lines)

        vm_id = next(i for i, v in vms.items() if v["power_state"] == "Running")
        result = await env.cli("rest", "patch", f"vms/{vm_id}", "name_label=from the cli")
        assert result.code == 0 and result.stdout == "", result
        result = await env.cli("rest", "put", f"vms/{vm_id}/tags/cli tag")
        assert result.code == 0, result
        result = await env.cli("rest", "get", f"/rest/v0/vms/{vm_id}")
        assert result.json()["name_label"] == "from the cli"
        assert result.json()["tags"] == ["cli tag"]
        result = await env.cli(
            "rest", "post", f"vms/{vm_id}/actions/snapshot", "name_label=cli snap"
        )
        task_id = result.json()["taskId"]
        result = await env.cli("rest", "get", f"tasks/{task_id}", "wait=result")
        assert result.json()["status"] == "success"
        snapshot_id = result.json()["result"]["id"]
        result = await env.cli("rest", "delete", f"vm-snapshots/{snapshot_id}")
        assert result.code == 0, result

        result = await env.cli("rest", "get", "vms/no-such-vm")
        assert result.code == 1 and "HTTP 404 no such VM no-such-vm" in result.stderr
        result = await env.cli("rest", "get", "vms", "filter=a:)")
        assert result.code == 1 and "parse error" in result.stderr
        result = await env.cli("rest", "post", f"vms/{vm_id}/actions/start", "hostId=json:1")
        assert result.code == 7, result
        result = await env.cli("rest", "fly", "vms")
        assert result.code == 2


async def test_rest_watch(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        await env.register()
        vm_id = next(iter(await env.client.call("xo.getAllObjects", {"filter": {"type": "VM"}})))
        process = await asyncio.create_subprocess_exec(
            *CLI,
            "rest",
            "watch",
            "vms",
            "fields=name_label",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env.env(),
        )
        try:
            # A watch sends only what changes once it is connected: rename until a line comes.
            line = None
            async with asyncio.timeout(20):  # the first rename seen by the watch
                for attempt in range(100):
                    await env.client.call("vm.set", {"id": vm_id, "name_label": f"w{attempt}"})
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):
                            line = orjson.loads(await process.stdout.readline())
                            break
            assert line is not None and line[0] == "update"
            assert line[1]["href"] == f"/rest/v0/vms/{vm_id}"
            assert line[1]["name_label"].startswith("w")
        finally:
            process.terminate()
            with contextlib.suppress(ProcessLookupError):
                await process.wait()
