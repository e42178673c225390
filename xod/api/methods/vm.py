"""vm.*: VM actions forwarded to the pool master, as xo-server does them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator
from typing import Any

from xod.api import errors
from xod.api.commands import ACTION_HANDLERS, ACTIONS, Command, action, execute
from xod.api.context import CallContext
from xod.api.jobs import commands_of
from xod.api.methods import vm_create, vm_devices, vm_migration
from xod.api.methods.vm_edit import VmEditor
from xod.api.registry import Registry
from xod.xapi import NULL_REF
from xod.xapi.errors import XapiError

VM_TYPES = ("VM",)
# What vm.snapshot/vm.clone/vm.copy may start from (XO lets templates be copied too).
COPYABLE_TYPES = ("VM", "VM-template")
# The operations whose blocks vm.start (forced), vm.stop and vm.restart (bypassBlockedOperation)
# lift, as xo-server does.
START_OPERATIONS = ("start", "start_on")
SHUTDOWN_OPERATIONS = ("shutdown", "clean_shutdown", "hard_shutdown")
RESTART_OPERATIONS = ("reboot", "clean_reboot", "hard_reboot")
# What xapi answers a clean shutdown the guest cannot do (xo-server: "requires PV drivers").
_NO_CLEAN_SHUTDOWN = frozenset(
    {"VM_MISSING_PV_DRIVERS", "VM_LACKS_FEATURE_SHUTDOWN", "VM_LACKS_FEATURE"}
)


def _new_object_id(command: Command, ref: Any) -> Any:
    """The XO id of a VM a task created (the cache already has it: its creation came first)."""
    return command.id_of(ref) or ref


async def _clean_then_hard_shutdown(command: Command, ref: str, delay: float) -> None:
    """A clean shutdown, replaced by a hard one if it has not ended after `delay` seconds."""
    clean_task: list[str] = []
    clean = asyncio.ensure_future(command.run("VM.clean_shutdown", ref, on_task=clean_task.append))
    try:
        await asyncio.wait_for(asyncio.shield(clean), delay)
        return
    except TimeoutError:
        pass
    except BaseException:
        clean.cancel()  # not left running on its own when this action is stopped
        raise
    for task_ref in clean_task:
        with contextlib.suppress(Exception):
            await command.send("task.cancel", task_ref)
    with contextlib.suppress(Exception):
        await clean  # cancelled (or finished meanwhile): either way, now force it
    if (command.store.get(command.object_id) or {}).get("power_state") != "Halted":
        await command.run("VM.hard_shutdown", ref)


def _assert_unique_macs(command: Command, vm: dict[str, Any]) -> None:
    """xo-server's check before a start: no two VIFs of the VM, and no running VM of the pool,
    share a MAC address (two guests with one MAC break each other's network)."""
    store = command.store

    def macs(obj: dict[str, Any]) -> list[str]:
        return [mac for vif in obj.get("VIFs") or () if (mac := (store.get(vif) or {}).get("MAC"))]

    own = macs(vm)
    duplicated = len(set(own)) != len(own)
    if own and not duplicated:
        wanted = set(own)
        duplicated = any(
            other["id"] != vm["id"]
            and other.get("power_state") == "Running"
            and other.get("$pool") == vm.get("$pool")
            and not wanted.isdisjoint(macs(other))
            for other in store.by_type("VM").values()
        )
    if duplicated:
        raise errors.operation_failed(
            vm["id"], "DUPLICATED_MAC_ADDRESS", "operation failed: DUPLICATED_MAC_ADDRESS"
        )


@contextlib.asynccontextmanager
async def _unblocked(
    command: Command,
    vm: dict[str, Any],
    operations: tuple[str, ...],
    params: dict[str, Any],
    force: bool,
) -> AsyncIterator[None]:
    """`bypassBlockedOperation` (default: `force`), as xo-server does it: the blocks on
    `operations` are lifted for the action and put back, with their reasons, after it."""
    blocked = vm.get("blockedOperations") or {}
    lifted = {}
    if params.get("bypassBlockedOperation", force):
        lifted = {op: reason for op, reason in blocked.items() if op in operations}
    ref = vm["_xapiRef"]
    for operation in lifted:
        await command.call("VM.remove_from_blocked_operations", ref, operation)
    try:
        yield
    finally:
        for operation, reason in lifted.items():
            await command.call("VM.add_to_blocked_operations", ref, operation, reason)


def _own_disks(command: Command, vm: dict[str, Any]) -> list[str]:
    """The VM's own disks: not CD drives, not attached to any other VM."""
    store = command.store
    disks = []
    for vdi in vm_migration.vm_disks(command, vm):
        users = {(store.get(v) or {}).get("VM") for v in vdi.get("$VBDs") or ()}
        if users <= {vm["id"]}:
            disks.append(vdi["_xapiRef"])
    return disks


def register(registry: Registry) -> None:
    @action(registry, "vm.start")
    async def start(command: Command, params: dict[str, Any]) -> None:
        vm = command.resolve(params["id"], VM_TYPES)
        ref = vm["_xapiRef"]
        host_ref = command.ref_of(params["host"], "host") if params.get("host") else None
        state = vm["power_state"]
        # As xo-server: starting a paused VM unpauses it, a suspended one resumes.
        if state == "Paused":
            await command.run("VM.unpause", ref)
            return
        if state == "Suspended":
            if host_ref is not None:
                await command.run("VM.resume_on", ref, host_ref, False, False)
            else:
                await command.run("VM.resume", ref, False, False)
            return
        force = bool(params.get("force", False))
        if not params.get("bypassMacAddressesCheck", force):
            _assert_unique_macs(command, vm)
        if force:  # as xo-server: a forced start lifts the start blocks for good
            blocked = vm.get("blockedOperations") or {}
            for operation in START_OPERATIONS:
                if operation in blocked:
                    await command.call("VM.remove_from_blocked_operations", ref, operation)
        try:
            if host_ref is not None:
                await command.run("VM.start_on", ref, host_ref, False, False)
            else:
                await command.run("VM.start", ref, False, False)
        except XapiError as error:
            if error.code == "OPERATION_BLOCKED":  # xo-server's answer to a blocked start
                reason = error.params[1] if len(error.params) > 1 else None
                raise errors.forbidden_operation("Start", reason) from None
            raise

    @action(registry, "vm.stop")
    async def stop(command: Command, params: dict[str, Any]) -> None:
        vm = command.resolve(params["id"], VM_TYPES)
        ref = vm["_xapiRef"]
        force = bool(params.get("force"))
        async with _unblocked(command, vm, SHUTDOWN_OPERATIONS, params, force):
            if force:
                await command.run("VM.hard_shutdown", ref)
                return
            delay_ms = params.get("forceShutdownDelay") or 0
            try:
                if delay_ms <= 0:
                    await command.run("VM.clean_shutdown", ref)
                else:
                    await _clean_then_hard_shutdown(command, ref, delay_ms / 1000)
            except XapiError as error:
                if error.code in _NO_CLEAN_SHUTDOWN:
                    raise errors.invalid_parameters(
                        [], "clean shutdown requires PV drivers"
                    ) from None
                raise

    @action(registry, "vm.restart")
    async def restart(command: Command, params: dict[str, Any]) -> None:
        vm = command.resolve(params["id"], VM_TYPES)
        force = bool(params.get("force"))
        async with _unblocked(command, vm, RESTART_OPERATIONS, params, force):
            await command.run("VM.hard_reboot" if force else "VM.clean_reboot", vm["_xapiRef"])

    @action(registry, "vm.suspend")
    async def suspend(command: Command, params: dict[str, Any]) -> None:
        await command.run("VM.suspend", command.ref_of(params["id"], VM_TYPES))

    @action(registry, "vm.resume")
    async def resume(command: Command, params: dict[str, Any]) -> None:
        vm = command.resolve(params["id"], VM_TYPES)
        # xo-server's resumeVm: a paused VM is unpaused, a suspended one resumed.
        if vm["power_state"] == "Paused":
            await command.run("VM.unpause", vm["_xapiRef"])
        else:
            await command.run("VM.resume", vm["_xapiRef"], False, False)

    @action(registry, "vm.pause")
    async def pause(command: Command, params: dict[str, Any]) -> None:
        await command.run("VM.pause", command.ref_of(params["id"], VM_TYPES))

    @action(registry, "vm.unpause")
    async def unpause(command: Command, params: dict[str, Any]) -> None:
        await command.run("VM.unpause", command.ref_of(params["id"], VM_TYPES))

    @action(registry, "vm.clone")
    async def clone(command: Command, params: dict[str, Any]) -> Any:
        ref = command.ref_of(params["id"], COPYABLE_TYPES)
        if params["full_copy"]:
            new_ref = await command.run("VM.copy", ref, params["name"], NULL_REF)
        else:
            new_ref = await command.run("VM.clone", ref, params["name"])
        return _new_object_id(command, new_ref)

    @action(registry, "vm.copy")
    async def copy(command: Command, params: dict[str, Any]) -> Any:
        vm = command.resolve(params["vm"], COPYABLE_TYPES)
        sr_ref = command.ref_of(params["sr"], "SR")  # another pool's SR: not implemented
        name = params.get("name") or f"{vm['name_label']}_COPY"
        new_ref = await command.run("VM.copy", vm["_xapiRef"], name, sr_ref)
        return _new_object_id(command, new_ref)

    @action(registry, "vm.snapshot")
    async def snapshot(command: Command, params: dict[str, Any]) -> Any:
        vm = command.resolve(params["id"], VM_TYPES)
        name = params.get("name")
        if not name:
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            name = f"{vm['name_label']}_{stamp}"
        if params.get("saveMemory"):
            new_ref = await command.run("VM.checkpoint", vm["_xapiRef"], name)
        else:
            new_ref = await command.run("VM.snapshot", vm["_xapiRef"], name, [])
        if params.get("description"):
            await command.call("VM.set_name_description", new_ref, params["description"])
        return _new_object_id(command, new_ref)

    @action(registry, "vm.revert")
    async def revert(command: Command, params: dict[str, Any]) -> None:
        await command.run("VM.revert", command.ref_of(params["snapshot"], "VM-snapshot"))

    action(registry, "vm.migrate")(vm_migration.migrate)

    @action(registry, "vm.delete")
    async def delete(command: Command, params: dict[str, Any]) -> None:
        vm = command.resolve(params["id"], ("VM", "VM-template", "VM-snapshot"))
        ref = vm["_xapiRef"]
        # `force` stands for both overrides, as in xo-server.
        force = bool(params.get("force"))
        blocked = (vm.get("blockedOperations") or {}).get("destroy")
        if blocked is not None and not params.get("forceBlockedOperation", force):
            reason = "protected from accidental deletion" if blocked == "true" else blocked
            raise errors.forbidden_operation(f"destroy is blocked: {reason}")
        if vm.get("isDefaultTemplate") and not params.get("forceDeleteDefaultTemplate", force):
            raise errors.incorrect_state(True, False, vm["id"], "isDefaultTemplate")
        disks = _own_disks(command, vm) if params.get("deleteDisks") else []
        if vm["power_state"] != "Halted" and vm["type"] != "VM-snapshot":
            # Stopped first, as xo-server does (force or not: Terraform deletes running VMs);
            # a suspended VM's image goes with it too.
            await command.run("VM.hard_shutdown", ref)
        if blocked is not None:
            await command.call("VM.remove_from_blocked_operations", ref, "destroy")
        await command.run("VM.destroy", ref)
        for vdi_ref in disks:
            await command.run("VDI.destroy", vdi_ref)

    @action(registry, "vm.set")
    async def set_(command: Command, params: dict[str, Any]) -> None:
        vm = command.resolve(params["id"], ("VM", "VM-template", "VM-snapshot"))
        await VmEditor(command, vm).apply({k: v for k, v in params.items() if k != "id"})

    async def create(ctx: CallContext, params: dict[str, Any]) -> Any:
        # The creator's id goes into the VM's XO data (`creation.user`).
        params = {**params, vm_create.CREATOR: None if ctx.user is None else ctx.user.id}
        commands = commands_of(ctx.services)
        return await execute(commands, ctx, "vm.create", vm_create.create, params)

    registry.add("vm.create", create, "write")
    ACTIONS.add("vm.create")
    ACTION_HANDLERS["vm.create"] = vm_create.create
    action(registry, "vm.insertCd")(vm_devices.insert_cd)
    action(registry, "vm.ejectCd")(vm_devices.eject_cd)
    action(registry, "vm.createInterface")(vm_devices.create_interface)
    action(registry, "vm.attachDisk")(vm_devices.attach_disk)
    action(registry, "vm.setBootOrder")(vm_devices.set_boot_order)
    action(registry, "vm.getCloudInitConfig")(vm_create.get_cloud_init_config)
