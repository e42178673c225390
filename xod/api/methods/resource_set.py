"""resourceSet.*: XO's self-service sets (xod/store/resource_sets.py holds them and their usage
accounting). Admins write them; anyone signed in reads one by id, and the sets it may use.

A VM belongs to a set through its `other_config["xo:resource_set"]` (the cache shows it as the
VM's `resourceSet`): deleting a set takes its VMs out of it on their pools, and
`recomputeAllLimits` recounts the usages from the VMs in the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from xod.api import errors
from xod.api.commands import Command
from xod.api.context import CallContext
from xod.api.jobs import commands_of
from xod.api.methods.xapi_calls import update_other_config
from xod.api.registry import SIGNED_IN, Registry
from xod.store import NoSuchResourceSet, ResourceSet
from xod.xapi.errors import XapiError

# The VM objects a set can hold (XO filters every object on `resourceSet`).
VM_TYPES = ("VM", "VM-snapshot", "VM-template")
RESOURCE_SET_KEY = "xo:resource_set"


def vm_resources_usage(
    vm: Mapping[str, Any], get_object: Callable[[str], Mapping[str, Any] | None]
) -> dict[str, int]:
    """What a VM counts against its set, as xo-server computes it: vCPUs at startup, dynamic
    max memory, one `vms`, and its distinct non-CD disks (`disks`) with their virtual sizes
    (`disk`)."""
    seen: set[str] = set()
    disk = 0
    for vbd_id in vm.get("$VBDs") or ():
        vbd = get_object(vbd_id)
        if vbd is None or vbd.get("is_cd_drive"):
            continue
        vdi_id = vbd.get("VDI")
        if not isinstance(vdi_id, str) or vdi_id in seen:
            continue
        vdi = get_object(vdi_id)
        if vdi is not None:
            seen.add(vdi_id)
            disk += int(vdi.get("size") or 0)
    return {
        "cpus": int(vm["CPUs"]["number"]),
        "disk": disk,
        "disks": len(seen),
        "memory": int(vm["memory"]["dynamic"][1]),
        "vms": 1,
    }


def _vms_in_sets(ctx: CallContext) -> list[dict[str, Any]]:
    """The cached VMs (of VM_TYPES) that are in a set."""
    objects = ctx.services.objects
    return [
        vm
        for object_type in VM_TYPES
        for vm in objects.by_type(object_type).values()
        if vm.get("resourceSet")
    ]


def _vms_in(ctx: CallContext, set_id: str) -> list[dict[str, Any]]:
    return [vm for vm in _vms_in_sets(ctx) if vm["resourceSet"] == set_id]


def _no_such(error: NoSuchResourceSet) -> errors.ApiError:
    return errors.no_such_object(error.id, "resourceSet")


async def _leave_set(ctx: CallContext, vm: Mapping[str, Any]) -> None:
    """Take a VM out of its set on its pool (the other_config key removed)."""
    command = Command(commands_of(ctx.services), ctx.method, client=ctx.connection)
    ref = command.ref_of(vm["id"], VM_TYPES)
    try:
        await update_other_config(command, "VM", ref, RESOURCE_SET_KEY, None)
        await command.settle()
    except XapiError as error:
        raise command.translate(error) from None


def register(registry: Registry) -> None:
    def changed_for(
        ctx: CallContext, subjects: Iterable[str], acl_subjects: Iterable[str] = ()
    ) -> None:
        """The members of `subjects` see other objects; `acl_subjects` lost ACLs."""
        access = ctx.services.access
        acl_subjects = set(acl_subjects)
        access.changed(access.members_of({*subjects, *acl_subjects}), subjects=acl_subjects)

    def update(ctx: CallContext, set_id: str, change: Callable[[ResourceSet], None]) -> None:
        try:
            ctx.services.store.resource_sets.update(set_id, change)
        except NoSuchResourceSet as error:
            raise _no_such(error) from None

    @registry.method("resourceSet.create", permission="admin")
    async def create(ctx: CallContext, params: dict[str, Any]) -> Any:
        created = ctx.services.store.resource_sets.create(
            params["name"],
            subjects=params.get("subjects") or (),
            objects=params.get("objects") or (),
            limits=params.get("limits"),
            tags=params.get("tags") or (),
            share_by_default=params.get("shareByDefault", False),
        )
        changed_for(ctx, created["subjects"])
        return created

    @registry.method("resourceSet.delete", permission="admin")
    async def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
        store = ctx.services.store
        try:
            resource_set = store.resource_sets.get(params["id"])
        except NoSuchResourceSet as error:
            raise _no_such(error) from None
        # As XO: every VM leaves the set first, and loses its ACLs (they came with the set).
        acl_subjects: set[str] = set()
        for vm in _vms_in(ctx, params["id"]):
            await _leave_set(ctx, vm)
            acl_subjects.update(acl.subject for acl in store.acls.remove_for_object(vm["id"]))
        try:
            store.resource_sets.delete(params["id"])
        except NoSuchResourceSet as error:  # deleted meanwhile by another call
            raise _no_such(error) from None
        changed_for(ctx, resource_set["subjects"], acl_subjects)
        return True

    @registry.method("resourceSet.set", permission="admin")
    async def set_fields(ctx: CallContext, params: dict[str, Any]) -> Any:
        store = ctx.services.store
        try:
            before, after = store.resource_sets.set_fields(
                params["id"],
                name=params.get("name"),
                share_by_default=params.get("shareByDefault"),
                subjects=params.get("subjects"),
                objects=params.get("objects"),
                ip_pools=params.get("ipPools"),
                limits=params.get("limits"),
                tags=params.get("tags"),
            )
        except NoSuchResourceSet as error:
            raise _no_such(error) from None
        # Subjects taken out of the set lose their ACLs on its VMs and snapshots.
        removed = set(before["subjects"]) - set(after["subjects"])
        if removed:
            for vm in _vms_in(ctx, params["id"]):
                if vm["type"] in ("VM", "VM-snapshot"):
                    store.acls.remove_for_object(vm["id"], removed)
        if "subjects" in params or "objects" in params:
            changed_for(ctx, set(before["subjects"]) | set(after["subjects"]), removed)
        return True

    @registry.method("resourceSet.get", permission=SIGNED_IN)
    async def get(ctx: CallContext, params: dict[str, Any]) -> Any:
        try:
            return ctx.services.store.resource_sets.get(params["id"])
        except NoSuchResourceSet as error:
            raise _no_such(error) from None

    @registry.method("resourceSet.getAll", permission=SIGNED_IN)
    async def get_all(ctx: CallContext, params: dict[str, Any]) -> Any:
        user = ctx.require_user()
        sets = ctx.services.store.resource_sets
        if ctx.is_admin:
            return sets.all()
        return sets.for_subjects(ctx.services.access.subjects_of(user))

    def edit_members(
        ctx: CallContext, params: dict[str, Any], key: Literal["objects", "subjects"], add: bool
    ) -> bool:
        """Add one object or subject to a set, or remove it; then the grants that moved: the
        set's subjects' for an object, the subject's own for a subject."""
        value = params["object" if key == "objects" else "subject"]

        def change(resource_set: ResourceSet) -> None:
            members = resource_set[key]
            resource_set[key] = [*members, value] if add else [m for m in members if m != value]

        update(ctx, params["id"], change)
        if key == "objects":
            changed_for(ctx, ctx.services.store.resource_sets.get(params["id"])["subjects"])
        else:
            changed_for(ctx, [value])
        return True

    @registry.method("resourceSet.addObject", permission="admin")
    async def add_object(ctx: CallContext, params: dict[str, Any]) -> Any:
        return edit_members(ctx, params, "objects", add=True)

    @registry.method("resourceSet.removeObject", permission="admin")
    async def remove_object(ctx: CallContext, params: dict[str, Any]) -> Any:
        return edit_members(ctx, params, "objects", add=False)

    @registry.method("resourceSet.addSubject", permission="admin")
    async def add_subject(ctx: CallContext, params: dict[str, Any]) -> Any:
        return edit_members(ctx, params, "subjects", add=True)

    @registry.method("resourceSet.removeSubject", permission="admin")
    async def remove_subject(ctx: CallContext, params: dict[str, Any]) -> Any:
        return edit_members(ctx, params, "subjects", add=False)

    @registry.method("resourceSet.addLimit", permission="admin")
    async def add_limit(ctx: CallContext, params: dict[str, Any]) -> Any:
        def change(resource_set: ResourceSet) -> None:
            # A bare number, as XO stores it: read back as {total, usage: 0}.
            resource_set["limits"][params["limitId"]] = params["quantity"]

        update(ctx, params["id"], change)
        return True

    @registry.method("resourceSet.removeLimit", permission="admin")
    async def remove_limit(ctx: CallContext, params: dict[str, Any]) -> Any:
        update(ctx, params["id"], lambda s: s["limits"].pop(params["limitId"], None))
        return True

    @registry.method("resourceSet.recomputeAllLimits", permission="admin")
    async def recompute_all_limits(ctx: CallContext, params: dict[str, Any]) -> Any:
        usages: dict[str, dict[str, int]] = {}
        get_object = ctx.services.objects.get
        for vm in _vms_in_sets(ctx):
            if "xo:backup:job" in (vm.get("other") or {}):  # a backup's copy: not charged
                continue
            totals = usages.setdefault(vm["resourceSet"], {})
            for limit_id, usage in vm_resources_usage(vm, get_object).items():
                totals[limit_id] = totals.get(limit_id, 0) + usage
        ctx.services.store.resource_sets.recompute(usages)
        return True
