"""Exports and imports through xod's one-shot URLs: a real xod, a simulated pool behind it, an
aiohttp client on loopback, and `qemu-img` checking every VHD file."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.api.test_commands_support import Env, commands_env
from tests.formats.qemu import qemu_img
from tests.sim.transfer_helpers import MiB, expected_raw, small_halted_vm, small_vdi, small_vm
from xod.formats.xva import XvaReader


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with commands_env(tmp_path) as environment:
        yield environment


async def cached(env: Env, object_id: str) -> dict[str, Any]:
    async def seen() -> dict[str, Any]:
        while (obj := await env.object(object_id)) is None:
            await asyncio.sleep(0.02)
        return obj

    return await asyncio.wait_for(seen(), 10)  # the pool's change reaches the cache


async def download(env: Env, path: str) -> bytes:
    async with (
        aiohttp.ClientSession() as http,
        http.get(env.app.url + path) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.read()


async def upload(env: Env, path: str, body: bytes) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(env.app.url + path, data=body) as response,
    ):
        if response.content_type != "application/json":
            return response.status, await response.text()
        return response.status, await response.json()


async def new_vdi(env: Env, size: int, density: float = 0.5) -> tuple[str, str]:
    ref, uuid = small_vdi(env.sim, size, density)
    await cached(env, uuid)
    return ref, uuid


async def test_raw_vhd_raw_round_trip_checked_by_qemu(env: Env, tmp_path: Path) -> None:
    ref_a, vdi_a = await new_vdi(env, 7 * MiB)
    _ref_b, vdi_b = await new_vdi(env, 7 * MiB)
    image = bytearray(7 * MiB)
    image[3 * MiB : 3 * MiB + 5000] = os.urandom(5000)
    image[-1] = 1
    (tmp_path / "in.raw").write_bytes(image)

    send = await env.client.call("vdi.importContent", {"id": vdi_a, "format": "raw"})
    assert await upload(env, send["$sendTo"], bytes(image)) == (
        200, {"jsonrpc": "2.0", "id": 0, "result": True},
    )  # fmt: skip
    assert expected_raw(env.sim, ref_a) == image

    get = await env.client.call("vdi.exportContent", {"id": vdi_a, "format": "vhd"})
    (tmp_path / "a.vhd").write_bytes(await download(env, get["$getFrom"]))
    info = await qemu_img("info", "--output=json", tmp_path / "a.vhd")
    assert '"format": "vpc"' in info and f'"virtual-size": {7 * MiB}' in info
    assert "identical" in await qemu_img(
        "compare", "-f", "raw", "-F", "vpc", tmp_path / "in.raw", tmp_path / "a.vhd"
    )

    send = await env.client.call("vdi.importContent", {"id": vdi_b, "format": "vhd"})
    status, answer = await upload(env, send["$sendTo"], (tmp_path / "a.vhd").read_bytes())
    assert (status, answer["result"]) == (200, True)
    get = await env.client.call("vdi.exportContent", {"id": vdi_b, "format": "raw"})
    assert await download(env, get["$getFrom"]) == image


async def test_a_vhd_written_by_qemu_imports(env: Env, tmp_path: Path) -> None:
    ref, vdi = await new_vdi(env, 9 * MiB)
    image = os.urandom(MiB) + bytes(6 * MiB) + os.urandom(MiB)
    (tmp_path / "in.raw").write_bytes(image)
    await qemu_img("convert", "-f", "raw", "-O", "vpc", tmp_path / "in.raw", tmp_path / "q.vhd")
    send = await env.client.call("vdi.importContent", {"id": vdi, "format": "vhd"})
    status, answer = await upload(env, send["$sendTo"], (tmp_path / "q.vhd").read_bytes())
    assert (status, answer["result"]) == (200, True)
    assert expected_raw(env.sim, ref) == image + bytes(MiB)


async def test_bad_vhds_are_refused_with_the_reason(env: Env, tmp_path: Path) -> None:
    ref, vdi = await new_vdi(env, 4 * MiB, density=1.0)  # both 2 MiB blocks allocated
    before = expected_raw(env.sim, ref)
    get = await env.client.call("vdi.exportContent", {"id": vdi, "format": "vhd"})
    image = await download(env, get["$getFrom"])
    tasks_before = set(env.sim.pool.records("task"))

    corrupt = image[:600] + bytes([image[600] ^ 1]) + image[601:]
    send = await env.client.call("vdi.importContent", {"id": vdi, "format": "vhd"})
    status, answer = await upload(env, send["$sendTo"], corrupt)
    assert status == 400
    assert (
        answer["error"]["message"] == "invalid image: corrupt VHD: dynamic header checksum mismatch"
    )
    # Refused before anything reached the pool: no new task (the export's own may be destroyed
    # meanwhile: xod removes its finished tasks in the background), content untouched.
    assert set(env.sim.pool.records("task")) <= tasks_before
    assert expected_raw(env.sim, ref) == before

    send = await env.client.call("vdi.importContent", {"id": vdi, "format": "vhd"})
    status, answer = await upload(env, send["$sendTo"], image[: len(image) - 2 * MiB])
    assert status == 400
    assert re.fullmatch(
        r"invalid image: truncated VHD: block 1 \(at byte \d+\) is missing: "
        r"1 of 2 blocks never arrived",
        answer["error"]["message"],
    )


async def test_an_upload_needs_its_length_and_a_url_serves_once(env: Env) -> None:
    ref, vdi = await new_vdi(env, MiB)
    before = expected_raw(env.sim, ref)
    send = await env.client.call("vdi.importContent", {"id": vdi, "format": "raw"})

    async def chunked() -> AsyncIterator[bytes]:
        yield bytes(MiB)  # no Content-Length: aiohttp sends it chunked

    async with (
        aiohttp.ClientSession() as http,
        http.post(env.app.url + send["$sendTo"], data=chunked()) as response,
    ):
        assert response.status == 400
        assert (await response.json())["error"]["message"] == "the upload needs a Content-Length"
    assert expected_raw(env.sim, ref) == before
    status, _ = await upload(env, send["$sendTo"], bytes(MiB))
    assert status == 404  # one shot: taken by the first request


async def test_a_failed_new_vdi_import_leaves_no_vdi(env: Env) -> None:
    """The SR import (REST's POST /srs/{id}/vdis) creates its VDI and removes it on failure."""
    from xod.api import transfers
    from xod.api.commands import Command
    from xod.api.jobs import commands_of

    sr = next(iter((await env.objects({"type": "SR", "SR_type": "nfs"})).values()), None) or next(
        iter((await env.objects({"type": "SR"})).values())
    )
    _ref, vdi = await new_vdi(env, 4 * MiB, density=1.0)
    get = await env.client.call("vdi.exportContent", {"id": vdi, "format": "vhd"})
    image = await download(env, get["$getFrom"])
    vdis_before = env.sim_count("VDI")

    async def body(data: bytes) -> AsyncIterator[bytes]:
        yield data

    command = Command(commands_of(env.app.services), "test")
    sr_ref = command.ref_of(sr["id"], "SR")
    with pytest.raises(Exception, match="truncated VHD"):
        await transfers.import_new_vdi(
            command, sr_ref, "vhd", body(image[:-MiB]), len(image) - MiB, name_label="cut"
        )
    assert env.sim_count("VDI") == vdis_before
    made = await transfers.import_new_vdi(
        command, sr_ref, "vhd", body(image), len(image), name_label="whole"
    )
    assert env.sim.pool.records("VDI")[made]["name_label"] == "whole"
    assert expected_raw(env.sim, made) == expected_raw(env.sim, _ref)


@pytest.mark.parametrize("compress", [False, "zstd", "gzip"])
async def test_vm_export_and_reimport(env: Env, compress: Any) -> None:
    vm_ref = small_halted_vm(env.sim)
    vm = env.sim.pool.records("VM")[vm_ref]
    await cached(env, vm["uuid"])
    get = await env.client.call("vm.export", {"vm": vm["uuid"], "compress": compress})
    xva = await download(env, get["$getFrom"])
    if compress == "zstd":
        assert xva.startswith(b"\x28\xb5\x2f\xfd")
    sr = env.sim.pool.db.get("pool", env.sim.pool.pool_ref)["default_SR"]
    send = await env.client.call(
        "vm.import", {"sr": env.sim.pool.records("SR")[sr]["uuid"], "type": "xva"}
    )
    status, answer = await upload(env, send["$sendTo"], xva)
    assert status == 200, answer
    imported = await cached(env, answer["result"])  # the new VM's id, already in the cache
    assert imported["name_label"] == vm["name_label"] and imported["id"] != vm["uuid"]
    new_ref = env.sim.pool.db.by_uuid("VM", answer["result"])
    disks = [
        [env.sim.pool.records("VBD")[vbd]["VDI"] for vbd in env.sim.pool.records("VM")[ref]["VBDs"]]
        for ref in (vm_ref, new_ref)
    ]
    contents = [sorted(expected_raw(env.sim, d) for d in vdis) for vdis in disks]
    assert contents[0] == contents[1] and len(contents[0]) >= 1


async def test_a_running_vm_is_exported_through_a_snapshot_removed_afterwards(env: Env) -> None:
    vm_ref = small_vm(env.sim, "Running")
    vm = env.sim.pool.records("VM")[vm_ref]
    await cached(env, vm["uuid"])
    counts = (env.sim_count("VM"), env.sim_count("VDI"), env.sim_count("VBD"))
    get = await env.client.call("vm.export", {"vm": vm["uuid"]})
    reader = XvaReader()
    reader.feed(await download(env, get["$getFrom"]))
    (exported,) = [o for o in reader.finish()["objects"] if o["class"] == "VM"]
    assert exported["snapshot"]["name_label"] == f"[XO Export] {vm['name_label']}"
    assert exported["snapshot"]["is_a_snapshot"] is True

    async def cleaned() -> None:
        while (env.sim_count("VM"), env.sim_count("VDI"), env.sim_count("VBD")) != counts:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(cleaned(), 10)  # the snapshot and its disks are removed
    assert env.sim.pool.records("VM")[vm_ref]["power_state"] == "Running"


def export_tasks(env: Env) -> list[dict[str, Any]]:
    return [
        t
        for t in env.sim.pool.records("task").values()
        if t["name_label"].startswith("Exporting content of VDI")
    ]


def final_statuses(env: Env) -> dict[str, str]:
    """Each task's last status as the pool records it (kept after the task is destroyed)."""
    statuses: dict[str, str] = {}

    def on_change(_gen: int, cls: str, ref: str, _op: str, record: dict[str, Any]) -> None:
        if cls == "task" and record and "content of VDI" in record.get("name_label", ""):
            statuses[ref] = record["status"]

    env.sim.pool.db.listeners.append(on_change)
    return statuses


async def test_disconnecting_mid_export_cancels_the_task(env: Env) -> None:
    _ref, vdi = await new_vdi(env, 4096 * MiB, density=1.0)  # far more than the test lets through
    statuses = final_statuses(env)
    get = await env.client.call("vdi.exportContent", {"id": vdi, "format": "raw"})
    async with aiohttp.ClientSession() as http:
        response = await http.get(env.app.url + get["$getFrom"])
        await response.content.readexactly(4 * MiB)
        assert list(statuses.values()) == ["pending"]
        response.close()  # the client goes away mid-stream

    async def ended() -> None:
        while "pending" in statuses.values():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(ended(), 10)  # xod notices the write failing and cancels the task
    assert list(statuses.values()) == ["cancelled"]


async def test_a_failure_after_the_headers_cuts_the_stream(env: Env) -> None:
    _ref, vdi = await new_vdi(env, 512 * MiB, density=1.0)
    get = await env.client.call("vdi.exportContent", {"id": vdi, "format": "raw"})
    async with (
        aiohttp.ClientSession() as http,
        http.get(env.app.url + get["$getFrom"]) as response,
    ):
        assert response.status == 200
        await response.content.readexactly(MiB)
        (task,) = [r for r, t in env.sim.pool.records("task").items() if t in export_tasks(env)]
        env.sim.pool.tasks.cancel(task, by="someone else")  # the export fails on the master
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()  # a chunked body without its end: visibly incomplete


async def test_progress_moves_in_the_cache(env: Env) -> None:
    _ref, vdi = await new_vdi(env, 256 * MiB, density=1.0)
    get = await env.client.call("vdi.exportContent", {"id": vdi, "format": "raw"})
    seen: set[float] = set()
    async with (
        aiohttp.ClientSession() as http,
        http.get(env.app.url + get["$getFrom"]) as response,
    ):
        async for _ in response.content.iter_chunked(8 * MiB):
            tasks = (await env.objects({"type": "task"})).values()
            seen.update(t["progress"] for t in tasks if "content of VDI" in t["name_label"])
            await asyncio.sleep(0.05)  # a slow reader: the master waits for it
    assert any(0 < p < 1 for p in seen), seen
