"""A VM's cloud-init drive as the VM would read it: downloaded from the simulated pool master's
`/export_raw_vdi`, read with Debian's mtools."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aiohttp

from tests.api.test_commands_support import Env
from tests.api.test_vm_create_support import cached, vm_devices

MTOOLS_TIMEOUT = 30.0


async def drive_image(env: Env, vm_id: str, tmp_path: Path) -> Path:
    """The content of the VM's config drive, downloaded from the pool master into a file."""
    vbds, _ = vm_devices(env, cached(env, vm_id))
    [drive] = [
        vdi
        for vbd in vbds
        if (vdi := cached(env, vbd["VDI"]))["name_label"] == "XO CloudConfigDrive"
    ]
    session = env.sim.pool.sessions.login(
        "root", "password", "tests", host=env.sim.pool.master, local=False
    )
    query = {"vdi": drive["uuid"], "format": "raw", "session_id": session}
    async with (
        aiohttp.ClientSession() as http,
        http.get(env.sim.master_url + "/export_raw_vdi/", params=query) as response,
    ):
        assert response.status == 200
        image = await response.read()
    assert len(image) == 10 * 2**20
    path = tmp_path / "cidata.img"
    path.write_bytes(image)
    return path


def mtools(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=MTOOLS_TIMEOUT, check=False)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def listing(image: Path, folder: str) -> list[str]:
    """The long names in a folder of the image (`mdir -b` prints full paths, one a line, a
    folder's ending with `/`)."""
    paths = mtools("mdir", "-b", "-i", str(image), folder).split()
    return sorted(path.rstrip("/").rsplit("/", 1)[-1] for path in paths)
