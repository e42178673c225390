"""`xod-cli export` and `xod-cli import`: a VM as an XVA, a VDI as a VHD or raw image, moved
through the method's one-shot URL (call.py's `deliver`) with a progress bar on a terminal."""

from __future__ import annotations

from typing import Any

from xod.cli.call import deliver
from xod.cli.config import load_registered
from xod.cli.session import registered_connection


def image_format(file_name: str, given: str | None) -> str:
    """`vhd` or `raw`: as given, else from the file's extension (VHD unless `.raw`/`.img`)."""
    if given is not None:
        return given
    return "raw" if file_name.lower().endswith((".raw", ".img")) else "vhd"


async def _transfer(method: str, params: dict[str, Any], file_name: str, progress: bool) -> int:
    config = load_registered()
    async with registered_connection(config) as connection:
        result = await connection.call(method, params)
        await deliver(config, result, file_name, progress=progress)
    return 0


async def export(
    kind: str,
    object_id: str,
    file_name: str,
    *,
    compress: str | None,
    fmt: str | None,
    progress: bool,
) -> int:
    if kind == "vm":
        params: dict[str, Any] = {"vm": object_id, "compress": compress or False}
        return await _transfer("vm.export", params, file_name, progress)
    params = {"id": object_id, "format": image_format(file_name, fmt)}
    return await _transfer("vdi.exportContent", params, file_name, progress)


async def import_(
    kind: str, target: str, file_name: str, *, fmt: str | None, progress: bool
) -> int:
    if kind == "vm":
        return await _transfer("vm.import", {"sr": target, "type": "xva"}, file_name, progress)
    params = {"id": target, "format": image_format(file_name, fmt)}
    return await _transfer("vdi.importContent", params, file_name, progress)
