"""vm.migrate inside a pool, as xo-server does it: VM.pool_migrate when only the host changes;
storage motion (host.migrate_receive, VM.assert_can_migrate unless bypassAssert,
VM.migrate_send) when disks have to move to other SRs (`sr`, `mapVdisSrs`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xod.api import errors
from xod.api.commands import Command
from xod.api.resolve import find_object


async def migrate(command: Command, params: dict[str, Any]) -> None:
    vm = command.resolve(params["vm"], "VM")
    host = find_object(command.store, params["targetHost"], ("host",))
    # The SRs the disks go to are administrated too (xo-server checks `mapVdisSrs`; xod also
    # the default `sr`: moving disks onto an SR is what administrating it allows).
    for sr_id in [params.get("sr"), *(params.get("mapVdisSrs") or {}).values()]:
        if isinstance(sr_id, str):
            command.check(find_object(command.store, sr_id, ("SR",))["id"], "administrate")
    if host.get("$pool") != vm.get("$pool"):
        raise errors.not_implemented()  # cross-pool migration: not yet
    # `force` skips xapi's check of the target's CPU against the one the VM booted on.
    options = {"force": "true" if params.get("force") else "false"}
    if params.get("sr") is None and not params.get("mapVdisSrs"):
        await command.run("VM.pool_migrate", vm["_xapiRef"], host["_xapiRef"], options)
        return
    vdi_map = _vdi_map(command, vm, host, params)
    network = _management_network(command, host)
    token = await command.send("host.migrate_receive", host["_xapiRef"], network, {})
    args: tuple[Any, ...] = (vm["_xapiRef"], token, True, vdi_map, {}, options)
    if not params.get("bypassAssert"):
        await command.run("VM.assert_can_migrate", *args)
    await command.run("VM.migrate_send", *args)


def _vdi_map(
    command: Command, vm: dict[str, Any], host: dict[str, Any], params: dict[str, Any]
) -> dict[str, str]:
    """Where each disk of the VM goes: its `mapVdisSrs` entry, else `sr`, else where it is when
    the target host reaches that SR, else the pool's default SR."""
    store = command.store
    explicit: dict[str, str] = {}
    for vdi_id, sr_id in (params.get("mapVdisSrs") or {}).items():
        if not isinstance(sr_id, str):
            raise errors.invalid_parameter(
                f"/mapVdisSrs/{vdi_id}", "type", "must be string", {"type": "string"}
            )
        command.resolve(vdi_id, "VDI")  # noSuchObject for an unknown id
        explicit[vdi_id] = command.ref_of(sr_id, "SR")
    default_sr = command.ref_of(params["sr"], "SR") if params.get("sr") else None
    vdi_map: dict[str, str] = {}
    for vdi in vm_disks(command, vm):
        target = explicit.pop(vdi["id"], None) or default_sr
        if target is None:
            sr = store.get(vdi["$SR"]) or {}
            target = (
                sr["_xapiRef"] if _reaches(command, host, sr) else _pool_default_sr(command, vm)
            )
        vdi_map[vdi["_xapiRef"]] = target
    if explicit:
        vdi_id = next(iter(explicit))
        raise errors.invalid_parameter(
            f"/mapVdisSrs/{vdi_id}", "disk", f"{vdi_id} is not a disk of this VM"
        )
    return vdi_map


def vm_disks(command: Command, vm: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The cached VDIs behind a VM's disk VBDs (CD drives and empty drives left out)."""
    store = command.store
    for vbd_id in vm.get("$VBDs") or ():
        vbd = store.get(vbd_id)
        if vbd is None or vbd.get("is_cd_drive") or not vbd.get("VDI"):
            continue
        vdi = store.get(vbd["VDI"])
        if vdi is not None:
            yield vdi


def check_disk_srs(command: Command, vm: dict[str, Any], permission: str) -> None:
    """The caller's `permission` on the SR of each disk of the VM (xo-server's
    checkPermissionOnSrs: what a clone, a live copy or a snapshot reads from)."""
    for vdi in vm_disks(command, vm):
        command.check(vdi["$SR"], permission)


def _reaches(command: Command, host: dict[str, Any], sr: dict[str, Any]) -> bool:
    """Whether the host has a PBD of the SR (it can reach the disks in it)."""
    return any(
        (command.store.get(pbd) or {}).get("host") == host["id"] for pbd in sr.get("$PBDs") or ()
    )


def _pool_default_sr(command: Command, vm: dict[str, Any]) -> str:
    pool = command.store.get(vm.get("$pool") or "") or {}
    sr = command.store.get(pool.get("default_SR") or "")
    if sr is None:
        raise errors.invalid_parameter(
            "/sr", "required", "a disk must move and the pool has no default SR: pass sr"
        )
    ref: str = sr["_xapiRef"]
    return ref


def _management_network(command: Command, host: dict[str, Any]) -> str:
    """The network the migration stream uses: the target host's management network."""
    for pif_id in host.get("$PIFs") or ():
        pif = command.store.get(pif_id) or {}
        network = command.store.get(pif.get("$network") or "") if pif.get("management") else None
        if network is not None:
            ref: str = network["_xapiRef"]
            return ref
    raise errors.forbidden_operation("vm.migrate", "the target host has no management network")
