"""vm.create's cloud-init drive, as the VM will read it: created through xod against the
simulator, downloaded back through the pool master's `/export_raw_vdi`, and read with Debian's
mtools — a FAT filesystem labelled `cidata` holding exactly the files cloud-init looks for."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from tests.api.config_drive_support import drive_image, listing, mtools
from tests.api.test_commands_support import Env, commands_env
from tests.api.test_vm_create_support import by_label, cache_shows, cached, vm_devices
from xod.api.methods import vm_create

USER_DATA = "#cloud-config\nhostname: web-1\nssh_authorized_keys:\n  - ssh-ed25519 AAAA test\n"
NETWORK = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"


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


async def test_drive_destroyed_after_boot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm_create, "DRIVE_READ_DELAY", 0.0)
    monkeypatch.setattr(vm_create, "DRIVE_POLL_INTERVAL", 0.05)
    async with commands_env(tmp_path) as env:
        kept = await create(env, name_label="kept", bootAfterCreate=True)
        gone = await create(env, bootAfterCreate=True, destroyCloudConfigVdiAfterBoot=True)

        def drives(vm_id: str) -> list[str]:
            vbds, _ = vm_devices(env, cached(env, vm_id))
            labels = [(cached(env, vbd["VDI"]) or {}).get("name_label") for vbd in vbds]
            return [label for label in labels if label == "XO CloudConfigDrive"]

        # The drive is there at first (cloud-init reads it while the VM boots).
        assert drives(gone) == ["XO CloudConfigDrive"]
        await cache_shows(
            env,
            "the booted VM without its config drive",
            lambda: cached(env, gone)["pvDriversDetected"] is True and drives(gone) == [],
        )
        assert env.sim_count("VDI", name_label="XO CloudConfigDrive") == 1
        # Without the option the drive stays.
        await cache_shows(
            env, "the other VM running", lambda: cached(env, kept)["power_state"] == "Running"
        )
        assert drives(kept) == ["XO CloudConfigDrive"]
