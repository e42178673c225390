"""The REST exports and imports: the seed docs' curl commands verbatim with the `curl` binary
(only the address, the token and the ids differ), the files checked with `qemu-img`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson

from tests.formats.qemu import qemu_img
from tests.rest.helpers import RestLab, rest_lab, wait_for
from tests.sim.transfer_helpers import MiB, expected_raw, small_halted_vm, small_vdi
from xod.formats.xva import XvaReader

EXPORT_VM = """curl \\
-b authenticationToken={token} \\
'{base}/rest/v0/vms/{vm}.xva?compress=zstd' \\
> myVM.xva"""
EXPORT_VHD = """curl \\
-b authenticationToken={token} \\
'{base}/rest/v0/vdis/{vdi}.vhd' \\
> myDisk.vhd"""
IMPORT_RAW = """curl \\
-X POST \\
-b authenticationToken={token} \\
-T myDisk.raw \\
'{base}/rest/v0/srs/{sr}/vdis?raw&name_label=my_imported_VDI' \\
| cat"""


async def shell(command: str, cwd: Path) -> bytes:
    """Run a command line as a user pastes it (in `cwd`); its output."""
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err
    return out


def default_sr(lab: RestLab) -> str:
    pool = lab.sim.pool
    return pool.records("SR")[pool.db.get("pool", pool.pool_ref)["default_SR"]]["uuid"]


async def cached(lab: RestLab, object_id: str) -> None:
    async def seen() -> bool:
        return bool(await lab.rpc.call("xo.getAllObjects", {"filter": {"id": object_id}}))

    await wait_for(seen, f"{object_id} in the cache")


async def test_the_documented_curl_commands(tmp_path: Path) -> None:
    async with rest_lab(tmp_path, vms=8) as lab:
        vm = lab.sim.pool.records("VM")[small_halted_vm(lab.sim)]
        vdi_ref, vdi = small_vdi(lab.sim, 6 * MiB)
        await cached(lab, vdi)
        fill = {"token": lab.token, "base": lab.app.url, "vm": vm["uuid"], "vdi": vdi}

        await shell(EXPORT_VM.format(**fill), tmp_path)
        xva = (tmp_path / "myVM.xva").read_bytes()
        assert xva.startswith(b"\x28\xb5\x2f\xfd")  # zstd
        reader = XvaReader()
        reader.feed(xva)
        (exported,) = [o for o in reader.finish()["objects"] if o["class"] == "VM"]
        assert exported["snapshot"]["uuid"] == vm["uuid"]

        await shell(EXPORT_VHD.format(**fill), tmp_path)
        info = await qemu_img("info", "--output=json", tmp_path / "myDisk.vhd")
        assert '"format": "vpc"' in info and f'"virtual-size": {6 * MiB}' in info
        await qemu_img(
            "convert", "-f", "vpc", "-O", "raw", tmp_path / "myDisk.vhd", tmp_path / "b.raw"
        )
        assert (tmp_path / "b.raw").read_bytes() == expected_raw(lab.sim, vdi_ref)

        image = os.urandom(MiB) + bytes(2 * MiB) + os.urandom(MiB)
        (tmp_path / "myDisk.raw").write_bytes(image)
        answer = orjson.loads(await shell(IMPORT_RAW.format(**fill, sr=default_sr(lab)), tmp_path))
        created = lab.sim.pool.db.by_uuid("VDI", answer["id"])
        assert lab.sim.pool.records("VDI")[created]["name_label"] == "my_imported_VDI"
        assert expected_raw(lab.sim, created) == image


async def test_vm_import_answers_201_with_its_location(tmp_path: Path) -> None:
    async with rest_lab(tmp_path, vms=8) as lab:
        vm = lab.sim.pool.records("VM")[small_halted_vm(lab.sim)]
        await cached(lab, vm["uuid"])
        response = await lab.request("GET", f"/vms/{vm['uuid']}.xva")
        assert response.status == 200
        assert response.headers["Content-Disposition"] == f"attachment; filename={vm['uuid']}.xva"
        xva = await response.read()
        pool_id = next(iter(await lab.rpc.call("xo.getAllObjects", {"filter": {"type": "pool"}})))
        response = await lab.request(
            "POST", f"/pools/{pool_id}/vms", params={"sr": default_sr(lab)}, data=xva
        )
        assert response.status == 201, await response.text()
        new_id = (await response.json())["id"]
        assert response.headers["Location"] == f"/rest/v0/vms/{new_id}"
        await cached(lab, new_id)
        assert (await lab.get_json(f"/vms/{new_id}"))["name_label"] == vm["name_label"]


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


async def test_a_bad_vhd_is_a_400_and_leaves_no_vdi(tmp_path: Path) -> None:
    async with rest_lab(tmp_path, vms=8) as lab:
        vdi_ref, vdi = small_vdi(lab.sim, 4 * MiB, density=1.0)
        await cached(lab, vdi)
        image = await (await lab.request("GET", f"/vdis/{vdi}.vhd")).read()
        vdis = len(lab.sim.pool.records("VDI"))
        sr = default_sr(lab)
        for bad, reason in (
            (
                image[:700] + bytes([image[700] ^ 1]) + image[701:],
                "corrupt VHD: dynamic header checksum mismatch",
            ),
            (image[: -3 * MiB], "truncated VHD: block 0"),
        ):
            response = await lab.request("POST", f"/srs/{sr}/vdis", data=bad)
            assert response.status == 400, await response.text()
            assert reason in (await response.json())["error"]
            await wait_for(lambda: len(lab.sim.pool.records("VDI")) == vdis, "no VDI left")
        assert (await lab.request("GET", f"/vdis/{vdi}.qcow2")).status == 422
        assert (await lab.request("GET", f"/vdis/{vdi}.raw")).status == 200
        assert expected_raw(lab.sim, vdi_ref)
