"""`xod-cli export/import` and `@=FILE` transfers against a real xod and simulated pool; the
files checked with `qemu-img`, the progress bar on a pty."""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli.helpers import lab
from tests.cli.test_progress import run_in_pty
from tests.formats.qemu import qemu_img
from tests.sim.transfer_helpers import MiB, expected_raw, small_halted_vm, small_vdi


async def test_vdi_export_then_import_as_vhd(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        await env.register()
        source, source_uuid = small_vdi(env.sim, 6 * MiB)
        target, target_uuid = small_vdi(env.sim, 6 * MiB)
        image = tmp_path / "disk.vhd"
        result = await env.cli("export", "vdi", source_uuid, str(image))
        assert result.code == 0, result
        assert f"saved to {image}" in result.stderr
        info = await qemu_img("info", "--output=json", image)
        assert '"format": "vpc"' in info and f'"virtual-size": {6 * MiB}' in info
        await qemu_img("convert", "-f", "vpc", "-O", "raw", image, tmp_path / "disk.raw")
        assert (tmp_path / "disk.raw").read_bytes() == expected_raw(env.sim, source)

        result = await env.cli("import", "vdi", target_uuid, str(image))
        assert result.code == 0, result
        assert result.json() == {"jsonrpc": "2.0", "id": 0, "result": True}
        assert expected_raw(env.sim, target) == expected_raw(env.sim, source)


async def test_raw_import_through_the_method_and_a_bad_vhd(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        await env.register()
        target, target_uuid = small_vdi(env.sim, 2 * MiB)
        raw = os.urandom(2 * MiB)
        (tmp_path / "in.raw").write_bytes(raw)
        result = await env.cli(
            "vdi.importContent", f"id={target_uuid}", "format=raw", f"@={tmp_path / 'in.raw'}"
        )
        assert result.code == 0, result
        assert expected_raw(env.sim, target) == raw

        (tmp_path / "bad.vhd").write_bytes(b"conectix" + bytes(600))
        result = await env.cli("import", "vdi", target_uuid, str(tmp_path / "bad.vhd"))
        assert result.code != 0
        assert "invalid image: corrupt VHD: footer checksum mismatch" in result.stderr
        assert expected_raw(env.sim, target) == raw


async def test_vm_export_and_import_shortcuts(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        await env.register()
        vm = env.sim.pool.records("VM")[small_halted_vm(env.sim)]
        xva = tmp_path / "vm.xva"
        result = await env.cli("export", "vm", vm["uuid"], str(xva), "--compress", "zstd")
        assert result.code == 0, result
        assert xva.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
        pool = env.sim.pool
        sr = pool.records("SR")[pool.db.get("pool", pool.pool_ref)["default_SR"]]["uuid"]
        result = await env.cli("import", "vm", sr, str(xva))
        assert result.code == 0, result
        new_vm = pool.records("VM")[pool.db.by_uuid("VM", result.json()["result"])]
        assert new_vm["name_label"] == vm["name_label"] and new_vm["uuid"] != vm["uuid"]


async def test_download_draws_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        await env.register()
        _ref, uuid = small_vdi(env.sim, 16 * MiB)
        out = tmp_path / "d.raw"
        code, screen = await run_in_pty(env, "export", "vdi", uuid, str(out))
        assert code == 0, screen
        assert "d.raw 16.0 MiB [" in screen and "100%" in screen
        assert out.stat().st_size == 16 * MiB
