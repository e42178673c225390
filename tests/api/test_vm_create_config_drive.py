"""vm.create's cloud-init drive, as the VM will read it: created through xod against the
simulator, downloaded back through the pool master's `/export_raw_vdi`, and read with Debian's
mtools — a FAT filesystem labelled `cidata` holding exactly the files cloud-init looks for."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import aiohttp
import orjson

from tests.api.test_commands_support import Env, commands_env
from tests.api.test_vm_create_support import by_label, cached, vm_devices

USER_DATA = "#cloud-config\nhostname: web-1\nssh_authorized_keys:\n  - ssh-ed25519 AAAA test\n"
NETWORK = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"
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


async def create(env: Env, **extra: object) -> str:
    template = min(env.app.objects.by_type("VM-template").values(), key=lambda t: t["id"])
    sr = by_label(env, "SR", "NFS storage")
    params = {
        "template": template["id"],
        "name_label": "web-1",
        "VDIs": [{"SR": sr["id"], "size": 2**30, "type": "user"}],
        "cloudConfig": USER_DATA,
        "bootAfterCreate": False,
        **extra,
    }
    return str(await env.client.call("vm.create", params))


async def test_config_drive_holds_user_data_meta_data_and_network_config(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = await create(env, networkConfig=NETWORK)
        image = await drive_image(env, vm_id, tmp_path)
        uuid = cached(env, vm_id)["uuid"]

        def read() -> None:
            label = mtools("mlabel", "-s", "-i", str(image), "::")
            assert label.strip() == "Volume label is CIDATA"
            assert listing(image, "::") == ["meta-data", "network-config", "openstack", "user-data"]
            assert listing(image, "::openstack/latest") == ["meta_data.json", "user_data"]
            files = {
                name: mtools("mtype", "-i", str(image), f"::{name}")
                for name in (
                    "meta-data",
                    "user-data",
                    "network-config",
                    "openstack/latest/meta_data.json",
                    "openstack/latest/user_data",
                )
            }
            assert files == {
                "meta-data": f"instance-id: {uuid}\n",
                "user-data": USER_DATA,
                "network-config": NETWORK,
                "openstack/latest/meta_data.json": orjson.dumps({"uuid": uuid}).decode(),
                "openstack/latest/user_data": USER_DATA,
            }

        await asyncio.to_thread(read)


async def test_config_drive_without_network_config(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = await create(env)
        image = await drive_image(env, vm_id, tmp_path)

        def read() -> None:
            assert listing(image, "::") == ["meta-data", "openstack", "user-data"]
            assert mtools("mtype", "-i", str(image), "::user-data") == USER_DATA

        await asyncio.to_thread(read)
