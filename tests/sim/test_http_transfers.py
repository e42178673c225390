"""The simulator's transfer handlers over real HTTP: plain aiohttp for the bytes, `qemu-img` for
the VHD files, the official `XenAPI` package for the tasks (in a worker thread)."""

from __future__ import annotations

import asyncio
import base64
import os
import xmlrpc.client
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.formats.qemu import qemu_img
from tests.sim.conftest import xenapi_login
from tests.sim.transfer_helpers import MiB, expected_raw, small_halted_vm, small_vdi
from xod.formats import xva
from xod.sim.simulator import Simulator


async def login(sim: Simulator) -> str:
    return sim.pool.sessions.login("root", "password", "tests", host=sim.pool.master, local=False)


async def get(sim: Simulator, path: str, **query: str) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(sim.master_url + path, params=query) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def put(sim: Simulator, path: str, body: bytes, **query: str) -> tuple[int, str]:
    """Upload under a task made with XenAPI (errors after the 200 only show there): the HTTP
    status (0 when the server cut the upload short) and the task."""

    def create_task() -> tuple[str, str]:
        session = xenapi_login(sim.master_url, sim)
        return session._session, session.xenapi.task.create("upload", "")

    session, task = await asyncio.to_thread(create_task)
    query = {"session_id": session, "task_id": task, **query}
    async with aiohttp.ClientSession() as http:
        try:
            async with http.put(sim.master_url + path, params=query, data=body) as response:
                await response.read()
                assert response.headers["task-id"] == task
                return response.status, task
        except aiohttp.ClientError:
            return 0, task


async def task_record(sim: Simulator, task: str) -> dict[str, Any]:
    async def finished() -> dict[str, Any]:
        while (record := sim.pool.records("task")[task])["status"] == "pending":
            await asyncio.sleep(0.02)
        return record

    return await asyncio.wait_for(finished(), 10)  # the task ends with its transfer


async def test_raw_and_vhd_exports_match_the_content_qemu_reads(
    sim: Simulator, tmp_path: Path
) -> None:
    vdi, uuid = small_vdi(sim, 5 * MiB + 512)
    session = await login(sim)
    status, headers, raw = await get(sim, "/export_raw_vdi/", vdi=uuid, session_id=session)
    assert status == 200 and raw == expected_raw(sim, vdi)
    assert raw.strip(b"\0"), "the deterministic content has non-zero chunks"
    assert headers["Content-Disposition"] == f'attachment; filename="{uuid}.raw"'
    assert (await task_record(sim, headers["task-id"]))["status"] == "success"

    status, headers, image = await get(
        sim, "/export_raw_vdi", vdi=vdi, format="vhd", session_id=session
    )
    assert status == 200 and headers["Content-Type"] == "application/vhd"
    (tmp_path / "d.vhd").write_bytes(image)
    info = await qemu_img("info", "--output=json", tmp_path / "d.vhd")
    assert '"format": "vpc"' in info and f'"virtual-size": {5 * MiB + 512}' in info
    await qemu_img("convert", "-f", "vpc", "-O", "raw", tmp_path / "d.vhd", tmp_path / "d.raw")
    assert (tmp_path / "d.raw").read_bytes() == raw


async def test_vhd_written_by_qemu_imports_under_the_clients_task(
    sim: Simulator, tmp_path: Path
) -> None:
    vdi, _uuid = small_vdi(sim, 8 * MiB)
    content = bytearray(8 * MiB)
    content[MiB : MiB + 4096] = os.urandom(4096)
    content[-100:] = b"e" * 100
    (tmp_path / "in.raw").write_bytes(content)
    await qemu_img("convert", "-f", "raw", "-O", "vpc", tmp_path / "in.raw", tmp_path / "q.vhd")

    status, task = await put(
        sim, "/import_raw_vdi/", (tmp_path / "q.vhd").read_bytes(), vdi=vdi, format="vhd"
    )
    assert status == 200
    record = await task_record(sim, task)
    assert record["status"] == "success", record["error_info"]
    (value,), _ = xmlrpc.client.loads(
        f"<methodResponse><params><param>{record['result']}</param></params></methodResponse>"
    )
    assert value == vdi
    assert expected_raw(sim, vdi) == bytes(content)


@pytest.mark.parametrize("cut", ["truncated", "corrupt"])
async def test_a_bad_vhd_fails_the_task_with_the_reason(
    sim: Simulator, tmp_path: Path, cut: str
) -> None:
    vdi, _uuid = small_vdi(sim, 4 * MiB)
    session = await login(sim)
    _, _, image = await get(sim, "/export_raw_vdi", vdi=vdi, format="vhd", session_id=session)
    bad = image[: len(image) - 700] if cut == "truncated" else image[:600] + b"X" + image[601:]
    _status, task = await put(sim, "/import_raw_vdi", bad, vdi=vdi, format="vhd")
    record = await task_record(sim, task)
    assert record["status"] == "failure"
    assert record["error_info"][0] == "VDI_IO_ERROR"
    assert cut in record["error_info"][1]


async def test_basic_auth_and_refusals(sim: Simulator) -> None:
    vdi, _uuid = small_vdi(sim, 2 * MiB)
    status, headers, _ = await get(sim, "/export_raw_vdi", vdi=vdi)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    status, _, _ = await get(sim, "/export_raw_vdi", vdi=vdi, session_id="OpaqueRef:nope")
    assert status == 401
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{sim.master_url}/export_raw_vdi",
            params={"vdi": vdi},
            headers={"Authorization": "Basic " + base64.b64encode(b"root:password").decode()},
        ) as response,
    ):
        assert response.status == 200
        assert await response.read() == expected_raw(sim, vdi)
    session = await login(sim)
    status, _, _ = await get(sim, "/export_raw_vdi", vdi=vdi, format="qcow9", session_id=session)
    assert status == 404


@pytest.mark.parametrize("compression", ["", "zstd", "gzip"])
async def test_vm_export_and_import_round_trip(sim: Simulator, compression: str) -> None:
    vm = small_halted_vm(sim)
    session = await login(sim)
    status, headers, body = await get(
        sim, "/export", ref=vm, use_compression=compression, session_id=session
    )
    assert status == 200
    assert headers["Content-Disposition"] == 'attachment; filename="export.xva"'
    reader = xva.XvaReader()
    events = reader.feed(body)
    reader.finish()
    assert reader._decompressor.method == (compression or None)
    assert events[0][0] == "ova"

    status, task = await put(sim, "/import", body)
    assert status == 200
    record = await task_record(sim, task)
    assert record["status"] == "success", record["error_info"]
    (refs,), _ = xmlrpc.client.loads(
        f"<methodResponse><params><param>{record['result']}</param></params></methodResponse>"
    )
    assert isinstance(refs, list)
    (new_vm,) = refs
    vms = sim.pool.records("VM")
    assert vms[new_vm]["name_label"] == vms[vm]["name_label"]
    old_disks = [sim.pool.records("VBD")[v]["VDI"] for v in vms[vm]["VBDs"]]
    new_disks = [sim.pool.records("VBD")[v]["VDI"] for v in vms[new_vm]["VBDs"]]
    assert len(new_disks) == len(old_disks) and set(new_disks).isdisjoint(old_disks)
    old = sorted(expected_raw(sim, d) for d in old_disks)
    assert sorted(expected_raw(sim, d) for d in new_disks) == old


async def test_a_truncated_xva_creates_nothing(sim: Simulator) -> None:
    vm = small_halted_vm(sim)
    session = await login(sim)
    _, _, body = await get(sim, "/export", ref=vm, session_id=session)
    before = (len(sim.pool.records("VM")), len(sim.pool.records("VDI")))
    _status, task = await put(sim, "/import", body[: len(body) // 2])
    record = await task_record(sim, task)
    assert record["status"] == "failure"
    assert record["error_info"][0] == "IMPORT_ERROR" and "truncated" in record["error_info"][1]
    assert (len(sim.pool.records("VM")), len(sim.pool.records("VDI"))) == before


async def test_cancelling_the_task_stops_the_export(sim: Simulator) -> None:
    vdi, _uuid = small_vdi(sim, 512 * MiB, density=1.0)
    session = await login(sim)
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{sim.master_url}/export_raw_vdi", params={"vdi": vdi, "session_id": session}
        ) as response,
    ):
        task = response.headers["task-id"]
        await response.content.readexactly(MiB)
        sim.pool.tasks.cancel(task, by=session)
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()  # cut short, never a clean end
    assert (await task_record(sim, task))["status"] == "cancelled"
