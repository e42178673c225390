"""vm.create: a new VM from a template, in xo-server's order of XAPI calls (`createVm`).

Clone (or copy) the template, drop its disk recipe and provision it, record who created it,
apply the edit params (vm_edit.py), set the boot order of an installation, insert the ISO,
create or update the disks, replace the template's interfaces by the requested ones, add a
cloud-init config drive (a FAT image, xod/formats/fat.py, uploaded into it). Any failure after
the clone destroys the new VM and the disks made for it. The answer comes once the cache shows
the VM with its disks and interfaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from xod.api import errors
from xod.api.commands import Command
from xod.api.methods import self_service
from xod.api.methods.vm_create_checks import set_charges
from xod.api.methods.vm_edit import EDIT_PARAMS, VmEditor, parse_size
from xod.api.transfers import import_vdi_content
from xod.formats.fat import fat_image
from xod.xapi import NULL_REF
from xod.xapi.errors import TransportError, XapiError

log = logging.getLogger("xod.api.vm_create")

# Set by the method's wrapper (never by a client: the schema refuses unknown keys).
CREATOR = "$creator"
CD_POSITION = "3"  # the slot xo-server keeps for the CD drive
CONFIG_DRIVE_LABEL = "XO CloudConfigDrive"
CONFIG_DRIVE_SIZE = 10 * 2**20  # xo-server's FAT buffer for the drive
CONFIG_DRIVE_FS_LABEL = "cidata"  # what cloud-init's NoCloud source looks for
UPLOAD_CHUNK = 2**20
# destroyCloudConfigVdiAfterBoot, as xo-server: once the started VM shows its PV drivers (or
# this long after the start), a pause for cloud-init to finish reading, then the drive goes.
DRIVE_BOOT_TIME_LIMIT = 600.0
DRIVE_READ_DELAY = 60.0
DRIVE_POLL_INTERVAL = 1.0


class VmBuilder:
    """The VM being created, and what must go if creation fails."""

    def __init__(self, command: Command, template: dict[str, Any], params: dict[str, Any]):
        self.command = command
        self.template = template
        self.params = params
        self.ref = NULL_REF
        self.new_vdis: list[str] = []
        # The VM as provisioned (the cache shows it: provision is followed to its end) and its
        # devices then; later steps keep their own account of what they add, so no step waits
        # for the cache until the very end.
        self.provisioned: dict[str, Any] = {}
        self.vbds: list[dict[str, Any]] = []
        # The SR of each disk of the VM by position, in the VM's order (for the config drive).
        self.disk_srs: dict[str, str] = {}
        # The config drive's VBD and VDI refs, once made.
        self.drive: tuple[str, str] | None = None

    async def _allowed(self, kind: str) -> list[str]:
        return list(await self.command.call(f"VM.get_allowed_{kind}_devices", self.ref))

    # -- steps ---------------------------------------------------------------------------------

    async def clone(self) -> None:
        template_ref, name = self.template["_xapiRef"], self.params["name_label"]
        if self.params.get("clone", True):
            self.ref = await self.command.run("VM.clone", template_ref, name)
        else:
            self.ref = await self.command.run("VM.copy", template_ref, name, NULL_REF)

    async def provision(self, user_id: str | None) -> None:
        command = self.command
        with contextlib.suppress(XapiError):  # no recipe: nothing to remove
            await command.call("VM.remove_from_other_config", self.ref, "disks")
        await command.run("VM.provision", self.ref)
        store = command.store
        self.provisioned = store.get(command.id_of(self.ref) or "") or {}
        self.vbds = [v for i in self.provisioned.get("$VBDs") or () if (v := store.get(i))]
        for vbd in self.vbds:
            vdi = store.get(vbd["VDI"] or "")
            if vdi is not None and not vbd.get("is_cd_drive"):
                self.disk_srs[vbd["position"]] = vdi["$SR"]
        uuid = self.provisioned["uuid"]
        creation = {
            "creation": {
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                "template": self.template["uuid"],
                "user": user_id,
            }
        }
        await command.call(
            "VM.add_to_other_config", self.ref, f"xo:{uuid[:8]}", orjson.dumps(creation).decode()
        )

    async def edit(self) -> None:
        edits = {k: v for k, v in self.params.items() if k in EDIT_PARAMS}
        await VmEditor(self.command, self.provisioned).apply(edits)

    async def install(self) -> None:
        repository = (self.params.get("installation") or {}).get("repository")
        if not repository:
            return
        iso = self.command.store.get(repository)
        method = "cd" if iso is not None else "network"
        vm = self.provisioned
        if vm.get("virtualizationMode") == "hvm":
            first = "d" if method == "cd" else "n"
            order = (vm.get("boot") or {}).get("order") or ("dcn" if method == "cd" else "ncd")
            order = first + order.replace(first, "")
            await self.command.call("VM.remove_from_HVM_boot_params", self.ref, "order")
            await self.command.call("VM.add_to_HVM_boot_params", self.ref, "order", order)
        if method == "cd":
            await self.insert_iso(self.command.ref_of(repository, ("VDI", "VDI-snapshot")))

    async def insert_iso(self, vdi_ref: str) -> None:
        drive = next((vbd for vbd in self.vbds if vbd.get("is_cd_drive")), None)
        if drive is not None:
            await self.command.run("VBD.insert", drive["_xapiRef"], vdi_ref)
            await self.command.call("VBD.set_bootable", drive["_xapiRef"], True)
            return
        allowed = await self._allowed("VBD")
        await self.command.call(
            "VBD.create",
            _vbd_record(self.ref, vdi_ref, _slot(allowed, prefer=CD_POSITION), True, cd=True),
        )

    async def disks(self) -> None:
        vdis = [dict(item) for item in self.params.get("VDIs") or ()]
        by_position = {vbd["position"]: vbd for vbd in self.vbds}
        for position, props in (self.params.get("existingDisks") or {}).items():
            if position in by_position:
                sr = props.get("$SR")
                vdis.append({**props, "userdevice": position, **({"SR": sr} if sr else {})})
        bootable = any(
            vbd.get("bootable") and not vbd.get("is_cd_drive") for vbd in by_position.values()
        )
        for item in vdis:
            position = item.get("userdevice")
            vbd = by_position.get(str(position)) if position is not None else None
            if vbd is None:
                if not item.get("destroy"):
                    await self.create_disk(
                        item, None if position is None else str(position), not bootable
                    )
                    bootable = True
            elif not vbd.get("VDI"):
                raise errors.unknown_error(f"VBD with userdevice: {position} exist but has no VDI")
            elif item.get("destroy"):
                await self.command.run("VDI.destroy", self.command.ref_of(vbd["VDI"], "VDI"))
                self.disk_srs.pop(vbd["position"], None)
            else:
                await self.update_disk(vbd, item)

    async def create_disk(self, item: dict[str, Any], position: str | None, bootable: bool) -> str:
        command = self.command
        sr_ref = command.ref_of(item.get("SR") or item.get("$SR") or "", "SR")
        vdi_ref = await command.call(
            "VDI.create",
            {
                "name_label": item.get("name_label", ""),
                "name_description": item.get("name_description", ""),
                "SR": sr_ref,
                "virtual_size": parse_size(item["size"], "VDIs/size"),
                "type": "user",
                "sharable": False,
                "read_only": False,
                "other_config": {},
            },
        )
        self.new_vdis.append(vdi_ref)
        if position is None:
            position = _slot(await self._allowed("VBD"), avoid=CD_POSITION)
        await command.call("VBD.create", _vbd_record(self.ref, vdi_ref, position, bootable))
        self.disk_srs[position] = command.id_of(sr_ref) or ""
        return str(vdi_ref)

    async def update_disk(self, vbd: dict[str, Any], item: dict[str, Any]) -> None:
        command = self.command
        vdi = command.store.get(vbd["VDI"]) or {}
        vdi_ref = vdi["_xapiRef"]
        for name in ("name_label", "name_description"):
            if name in item and item[name] != vdi.get(name):
                await command.call(f"VDI.set_{name}", vdi_ref, item[name])
        if item.get("size") is not None:
            size = parse_size(item["size"], "VDIs/size")
            if size < vdi.get("size", 0):
                raise errors.unknown_error(
                    "Unable to update to a smaller VDI size for VDI with PBD userdevice: "
                    f"{vbd['position']}"
                )
            if size > vdi.get("size", 0):
                await command.run("VDI.resize", vdi_ref, size)

    async def interfaces(self) -> None:
        command = self.command
        # The template's interfaces go: the requested ones replace them.
        for vif_id in self.provisioned.get("VIFs") or ():
            await command.run("VIF.destroy", command.ref_of(vif_id, "VIF"))
        requested = self.params.get("VIFs") or ()
        allowed = await self._allowed("VIF") if requested else []
        for index, vif in enumerate(requested):
            network = command.resolve(vif["network"], "network")
            ipv4 = list(vif.get("allowedIpv4Addresses") or ())
            ipv6 = list(vif.get("allowedIpv6Addresses") or ())
            await command.call(
                "VIF.create",
                {
                    "device": allowed[index],
                    "network": network["_xapiRef"],
                    "VM": self.ref,
                    "MAC": vif.get("mac") or "",
                    "MTU": network.get("MTU", 1500),
                    "locking_mode": "locked" if ipv4 or ipv6 else "network_default",
                    "ipv4_allowed": ipv4,
                    "ipv6_allowed": ipv6,
                    "other_config": {},
                    "qos_algorithm_type": "",
                    "qos_algorithm_params": {},
                },
            )

    async def config_drive(self) -> None:
        """The cloud-init drive (label `cidata`): a disk beside the VM's first disk."""
        command = self.command
        sr_id = next(iter(self.disk_srs.values()), None)
        if sr_id is None:
            raise errors.unknown_error("Can't create cloud init config drive for VM without disks")
        vdi_ref = await command.call(
            "VDI.create",
            {
                "name_label": CONFIG_DRIVE_LABEL,
                "SR": command.ref_of(sr_id, "SR"),
                "virtual_size": CONFIG_DRIVE_SIZE,
                "type": "user",
                "sharable": False,
                "read_only": False,
                "other_config": {},
            },
        )
        self.new_vdis.append(vdi_ref)
        image = await asyncio.to_thread(
            fat_image, CONFIG_DRIVE_SIZE, CONFIG_DRIVE_FS_LABEL, self.config_drive_files()
        )
        try:
            await import_vdi_content(command, vdi_ref, "raw", _pieces(image), len(image))
        except (XapiError, TransportError, errors.ApiError) as error:
            # As xo-server: a drive that could not be filled is still attached, and said.
            log.warning("vm.create: writing the cloud-init drive failed: %s", error)
        position = _slot(await self._allowed("VBD"), avoid=CD_POSITION)
        # Unpluggable: destroyCloudConfigVdiAfterBoot unplugs it from the running VM.
        record = _vbd_record(self.ref, vdi_ref, position, False, unpluggable=True)
        vbd_ref = await command.call("VBD.create", record)
        self.drive = (str(vbd_ref), str(vdi_ref))

    def config_drive_files(self) -> dict[str, bytes]:
        """The NoCloud files, and the OpenStack config-drive copies xo-server adds."""
        uuid = self.provisioned["uuid"]
        user_data = self.params["cloudConfig"].encode()
        files = {"meta-data": f"instance-id: {uuid}\n".encode(), "user-data": user_data}
        network = self.params.get("networkConfig")
        if network is not None:
            files["network-config"] = network.encode()
        files["openstack/latest/meta_data.json"] = orjson.dumps({"uuid": uuid})
        files["openstack/latest/user_data"] = user_data
        return files

    async def roll_back(self) -> None:
        """Creation failed: the new VM and the disks made for it go (errors only logged), and
        the caller hears of the failure once the cache no longer shows them."""
        command = self.command
        for method, ref in (("VM.destroy", self.ref), *(("VDI.destroy", v) for v in self.new_vdis)):
            try:
                await command.call(method, ref)
            except (XapiError, TransportError, errors.ApiError) as error:
                log.warning("vm.create roll-back: %s %s failed: %s", method, ref, error)
        await command.settle()


async def _pieces(image: bytes) -> AsyncIterator[bytes]:
    view = memoryview(image)
    for start in range(0, len(view), UPLOAD_CHUNK):
        yield bytes(view[start : start + UPLOAD_CHUNK])


def _slot(allowed: list[str], *, prefer: str | None = None, avoid: str | None = None) -> str:
    if prefer is not None and prefer in allowed:
        return prefer
    for slot in allowed:
        if slot != avoid:
            return slot
    raise errors.unknown_error("no free device slot on the VM")


def _vbd_record(
    vm: str, vdi: str, position: str, bootable: bool, *, cd: bool = False, unpluggable: bool = False
) -> dict[str, Any]:
    return {
        "VM": vm,
        "VDI": vdi,
        "userdevice": position,
        "bootable": bootable,
        "mode": "RO" if cd else "RW",
        "type": "CD" if cd else "Disk",
        "empty": False,
        "unpluggable": cd or unpluggable,
        "other_config": {},
        "qos_algorithm_type": "",
        "qos_algorithm_params": {},
    }


async def create(command: Command, params: dict[str, Any]) -> Any:
    # As xo-server (its createVm ends with an event barrier): the answer waits until the cache
    # shows the VM, its disks and interfaces, whichever connection reads next.
    command.wait_for_cache = True
    template = command.resolve(params["template"], "VM-template")
    services = command.commands.services
    set_id = params.get("resourceSet")
    # In a set, the VM's weight is charged first (code 24 past a limit: nothing is made).
    charge: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if set_id is not None:
        _, limits = set_charges(command.store, template, params)
        charge = self_service.charged(services, set_id, limits, command.user)
    with charge:
        builder = VmBuilder(command, template, params)
        await builder.clone()
        try:
            await builder.provision(params.get(CREATOR))
            if set_id is not None:
                await self_service.write_vm_set(command, builder.ref, set_id)
            await builder.edit()
            await builder.install()
            await builder.disks()
            await builder.interfaces()
            if params.get("cloudConfig") is not None:
                await builder.config_drive()
        except BaseException:
            await builder.roll_back()
            raise
    vm_id = command.id_of(builder.ref)
    if set_id is not None and vm_id is not None:
        # As xo-server: the creator administrates it, or with `share` every subject of the set.
        if params.get("share"):
            self_service.share_vm(services, vm_id, set_id)
        elif command.user is not None:
            self_service.grant_admin(services, [command.user.id], vm_id)
    if params.get("bootAfterCreate"):
        drive = builder.drive if params.get("destroyCloudConfigVdiAfterBoot") else None
        command.commands.spawn(_boot(command, builder.ref, drive))
    return vm_id


async def _boot(command: Command, ref: str, drive: tuple[str, str] | None) -> None:
    """bootAfterCreate: started in the background, as xo-server does, then the config drive
    (its VBD and VDI) destroyed if asked; a failure is logged."""
    try:
        await command.send("VM.start", ref, False, False)
        if drive is None:
            return
        await _booted(command, ref)
        await asyncio.sleep(DRIVE_READ_DELAY)
        vbd_ref, vdi_ref = drive
        await command.send("VBD.unplug", vbd_ref)
        await command.send("VDI.destroy", vdi_ref)
    except (XapiError, TransportError, errors.ApiError) as error:
        log.warning("vm.create: starting the new VM or removing its config drive failed: %s", error)


async def _booted(command: Command, ref: str) -> None:
    """Until the cache shows the VM's PV drivers (the guest is up), or the time limit; polled,
    as the cache offers no per-object wait and a boot takes many seconds anyway."""
    deadline = time.monotonic() + DRIVE_BOOT_TIME_LIMIT
    while time.monotonic() < deadline:
        if (command.store.get(command.id_of(ref) or "") or {}).get("pvDriversDetected"):
            return
        await asyncio.sleep(DRIVE_POLL_INTERVAL)
    log.info("vm.create: no PV drivers seen on the new VM; taking it as booted")


async def get_cloud_init_config(command: Command, params: dict[str, Any]) -> Any:
    """vm.getCloudInitConfig: the config the pool's xscontainer plugin proposes for a template
    (its answer starts with "True", which xo-server drops)."""
    template = command.resolve(params["template"], "VM-template")
    pool = command.store.get(template["$pool"]) or {}
    master = command.ref_of(pool.get("master") or "", "host")
    args = {"templateuuid": template["uuid"]}
    answer = await command.send(
        "host.call_plugin", master, "xscontainer", "get_config_drive_default", args
    )
    return str(answer)[4:]
