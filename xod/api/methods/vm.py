"""vm.*: VM actions forwarded to the pool master, as xo-server does them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator, Iterator
from typing import Any

from xod.acl.roles import ADMINISTRATE, OPERATE, VIEW
from xod.api import errors
from xod.api.commands import ACTION_HANDLERS, ACTIONS, Command, action, execute
from xod.api.context import CallContext
from xod.api.jobs import commands_of
from xod.api.methods import self_service, vm_create, vm_create_checks, vm_devices, vm_migration
from xod.api.methods.vm_edit import VmEditor, parse_size
from xod.api.registry import SIGNED_IN, Registry
from xod.xapi import NULL_REF
from xod.xapi.errors import XapiError

VM_TYPES = ("VM",)
# What vm.snapshot/vm.clone/vm.copy may start from (XO lets templates be copied too).
COPYABLE_TYPES = ("VM", "VM-template")
ALL_VM_TYPES = ("VM", "VM-template", "VM-snapshot")
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


@contextlib.contextmanager
def _charged_copy(command: Command, vm: dict[str, Any]) -> Iterator[None]:
    """A clone or snapshot of a VM in a set weighs what the VM weighs, charged to the set."""
    services = command.commands.services
    resource_set = self_service.set_of_vm(services, vm)
    if resource_set is None or vm["type"] == "VM-template":
        yield
        return
    usage = self_service.vm_usage(command.store, vm)
    with self_service.charged(services, resource_set["id"], usage, command.user):
        yield


def _edit_charges(vm: dict[str, Any], edits: dict[str, Any]) -> dict[str, int]:
    """What an edit adds to the VM's set, as xo-server's edit engine counts it: the change of
    vCPUs at startup and of the dynamic max memory."""
    charges = {}
    if "CPUs" in edits:
        charges["cpus"] = int(edits["CPUs"]) - int(vm["CPUs"]["number"])
    memory = edits.get("memoryMax", edits.get("memory"))
    if memory is not None:
        charges["memory"] = parse_size(memory, "memory") - int(vm["memory"]["dynamic"][1])
    return {key: value for key, value in charges.items() if value}


def register(registry: Registry) -> None:
    @action(registry, "vm.start", resolve=[("id", VM_TYPES, OPERATE), ("host", "host", OPERATE)])
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

    @action(registry, "vm.stop", resolve=[("id", VM_TYPES, OPERATE)])
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

    @action(registry, "vm.restart", resolve=[("id", VM_TYPES, OPERATE)])
    async def restart(command: Command, params: dict[str, Any]) -> None:
        vm = command.resolve(params["id"], VM_TYPES)
        force = bool(params.get("force"))
        async with _unblocked(command, vm, RESTART_OPERATIONS, params, force):
            await command.run("VM.hard_reboot" if force else "VM.clean_reboot", vm["_xapiRef"])

    @action(registry, "vm.suspend", resolve=[("id", VM_TYPES, OPERATE)])
    async def suspend(command: Command, params: dict[str, Any]) -> None:
        await command.run("VM.suspend", command.ref_of(params["id"], VM_TYPES))

    @action(registry, "vm.resume", resolve=[("id", VM_TYPES, OPERATE)])
    async def resume(command: Command, params: dict[str, Any]) -> None:
        vm = command.resolve(params["id"], VM_TYPES)
        # xo-server's resumeVm: a paused VM is unpaused, a suspended one resumed.
        if vm["power_state"] == "Paused":
            await command.run("VM.unpause", vm["_xapiRef"])
        else:
            await command.run("VM.resume", vm["_xapiRef"], False, False)

    @action(registry, "vm.pause", resolve=[("id", VM_TYPES, OPERATE)])
    async def pause(command: Command, params: dict[str, Any]) -> None:
        await command.run("VM.pause", command.ref_of(params["id"], VM_TYPES))

    @action(registry, "vm.unpause", resolve=[("id", VM_TYPES, OPERATE)])
    async def unpause(command: Command, params: dict[str, Any]) -> None:
        await command.run("VM.unpause", command.ref_of(params["id"], VM_TYPES))

    @action(registry, "vm.clone", resolve=[("id", COPYABLE_TYPES, ADMINISTRATE)])
    async def clone(command: Command, params: dict[str, Any]) -> Any:
        vm = await self_service.fresh(command, command.resolve(params["id"], COPYABLE_TYPES))
        vm_migration.check_disk_srs(command, vm, OPERATE)
        ref = vm["_xapiRef"]
        with _charged_copy(command, vm):
            if params["full_copy"]:
                new_ref = await command.run("VM.copy", ref, params["name"], NULL_REF)
            else:
                new_ref = await command.run("VM.clone", ref, params["name"])
        new_id = _new_object_id(command, new_ref)
        self_service.give_to_creator(command, new_id)
        return new_id

    @action(
        registry,
        "vm.copy",
        resolve=[("vm", COPYABLE_TYPES, ADMINISTRATE), ("sr", "SR", OPERATE)],
    )
    async def copy(command: Command, params: dict[str, Any]) -> Any:
        vm = await self_service.fresh(command, command.resolve(params["vm"], COPYABLE_TYPES))
        sr_ref = command.ref_of(params["sr"], "SR")  # another pool's SR: not implemented
        if vm.get("power_state") == "Running":  # as xo-server: its disks are read live
            vm_migration.check_disk_srs(command, vm, OPERATE)
        name = params.get("name") or f"{vm['name_label']}_COPY"
        with _charged_copy(command, vm):  # the copy keeps the VM's set
            new_ref = await command.run("VM.copy", vm["_xapiRef"], name, sr_ref)
        return _new_object_id(command, new_ref)

    @action(registry, "vm.snapshot", resolve=[("id", VM_TYPES, OPERATE)])
    async def snapshot(command: Command, params: dict[str, Any]) -> Any:
        vm = await self_service.fresh(command, command.resolve(params["id"], VM_TYPES))
        name = params.get("name")
        if not name:
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            name = f"{vm['name_label']}_{stamp}"
        # As xo-server: the subjects of the VM's set snapshot it without rights on its SRs.
        resource_set = self_service.set_of_vm(command.commands.services, vm)
        if resource_set is None or not self_service.is_subject(command.user, resource_set):
            vm_migration.check_disk_srs(command, vm, OPERATE)
        with _charged_copy(command, vm):
            if params.get("saveMemory"):
                new_ref = await command.run("VM.checkpoint", vm["_xapiRef"], name)
            else:
                new_ref = await command.run("VM.snapshot", vm["_xapiRef"], name, [])
        if params.get("description"):
            await command.call("VM.set_name_description", new_ref, params["description"])
        new_id = _new_object_id(command, new_ref)
        self_service.give_to_creator(command, new_id)
        return new_id

    @action(registry, "vm.revert", resolve=[("snapshot", "VM-snapshot", VIEW)])
    async def revert(command: Command, params: dict[str, Any]) -> None:
        snapshot = command.resolve(params["snapshot"], "VM-snapshot")
        vm = command.store.get(snapshot.get("$snapshot_of") or "")
        if vm is None:
            await command.run("VM.revert", snapshot["_xapiRef"])
            return
        command.check(vm["id"], OPERATE)  # as xo-server: reverting operates the VM
        vm = await self_service.fresh(command, vm)
        services = command.commands.services
        vm_set = self_service.set_of_vm(services, vm)
        if vm_set is None:
            await command.run("VM.revert", snapshot["_xapiRef"])
            return
        # As xo-server: the VM now weighs what the snapshot weighs, and stays in its set.
        store, set_id = command.store, vm_set["id"]
        vm_usage = self_service.vm_usage(store, vm)
        self_service.release(services, set_id, vm_usage)
        try:
            with self_service.charged(
                services, set_id, self_service.vm_usage(store, snapshot), command.user
            ):
                await command.run("VM.revert", snapshot["_xapiRef"])
                await self_service.write_vm_set(command, vm["_xapiRef"], set_id)
        except BaseException:
            self_service.allocate(services, set_id, vm_usage, None)
            raise

    action(
        registry,
        "vm.migrate",
        resolve=[("vm", VM_TYPES, ADMINISTRATE), ("targetHost", "host", ADMINISTRATE)],
    )(vm_migration.migrate)

    @action(registry, "vm.delete", resolve=[("id", ALL_VM_TYPES, ADMINISTRATE)])
    async def delete(command: Command, params: dict[str, Any]) -> None:
        vm = await self_service.fresh(command, command.resolve(params["id"], ALL_VM_TYPES))
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
        usage = self_service.vm_usage(command.store, vm) if vm["type"] != "VM-template" else {}
        await command.run("VM.destroy", ref)
        services = command.commands.services
        self_service.drop_acls(services, vm["id"])
        if vm.get("resourceSet") and usage:
            self_service.release(services, vm["resourceSet"], usage)
        # As xo-server: its snapshots (kept by xapi) leave their set, giving their usage back.
        for snapshot_id in vm.get("snapshots") or ():
            snapshot = command.store.get(snapshot_id)
            if snapshot is not None and snapshot.get("resourceSet"):
                await self_service.move_vm(command, snapshot, None)
        for vdi_ref in disks:
            await command.run("VDI.destroy", vdi_ref)

    @action(
        registry,
        "vm.set",
        resolve=[("id", ALL_VM_TYPES, ADMINISTRATE), ("suspendSr", "SR", ADMINISTRATE)],
    )
    async def set_(command: Command, params: dict[str, Any]) -> None:
        vm = command.resolve(params["id"], ALL_VM_TYPES)
        vm = await self_service.fresh(command, vm, weighed="resourceSet" in params)
        edits = {k: v for k, v in params.items() if k not in ("id", "resourceSet", "share")}
        services = command.commands.services
        vm_set = self_service.set_of_vm(services, vm)
        if "resourceSet" in params:
            if not command.is_admin:  # as xo-server: only admins move VMs between sets
                raise errors.unauthorized("admin")
            set_id = params["resourceSet"]
            await self_service.move_vm(command, vm, set_id)
            vm_set = None if set_id is None else self_service.get_set(services, set_id)
        elif params.get("share"):
            if vm_set is None:
                raise errors.invalid_parameters([], "the VM is not in a resource set")
            self_service.share_vm(services, vm["id"], vm_set["id"])
        if vm_set is not None:
            charges = _edit_charges(vm, edits)
            with self_service.charged(services, vm_set["id"], charges, command.user):
                await VmEditor(command, vm).apply(edits)
            return
        # As xo-server: the scheduler weight is the platform's, not a VM owner's, unless the
        # VM is in a set; `write` users keep administrating everything.
        user = command.user
        if "cpuWeight" in edits and user is not None and user.permission not in ("admin", "write"):
            raise errors.unauthorized("admin")
        await VmEditor(command, vm).apply(edits)

    async def create(ctx: CallContext, params: dict[str, Any]) -> Any:
        # Checked before anything is made: `administrate` on the template's pool, or the
        # resource set's constraints (xod/api/methods/vm_create_checks.py).
        params = vm_create_checks.authorize(ctx, params)
        # The creator's id goes into the VM's XO data (`creation.user`).
        params = {**params, vm_create.CREATOR: None if ctx.user is None else ctx.user.id}
        commands = commands_of(ctx.services)
        return await execute(commands, ctx, "vm.create", vm_create.create, params)

    registry.add("vm.create", create, SIGNED_IN, action=True)
    ACTIONS.add("vm.create")
    ACTION_HANDLERS["vm.create"] = vm_create.create
    # The CD: looked up only, as xo-server (an ISO SR's disks are anyone's to insert).
    cd_types = ("VDI", "VDI-snapshot")
    action(registry, "vm.insertCd", resolve=[("id", VM_TYPES, OPERATE), ("cd_id", cd_types, "")])(
        vm_devices.insert_cd
    )
    action(registry, "vm.ejectCd", resolve=[("id", VM_TYPES, OPERATE)])(vm_devices.eject_cd)
    action(
        registry,
        "vm.createInterface",
        resolve=[("vm", VM_TYPES, ADMINISTRATE), ("network", "network", "")],
    )(vm_devices.create_interface)
    action(
        registry,
        "vm.attachDisk",
        resolve=[("vm", VM_TYPES, ADMINISTRATE), ("vdi", "VDI", ADMINISTRATE)],
    )(vm_devices.attach_disk)
    action(registry, "vm.setBootOrder", resolve=[("vm", COPYABLE_TYPES, OPERATE)])(
        vm_devices.set_boot_order
    )
    action(
        registry,
        "vm.getCloudInitConfig",
        resolve=[("template", "VM-template", ADMINISTRATE)],
    )(vm_create.get_cloud_init_config)
