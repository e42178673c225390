"""Resource sets (XO's self-service) and the ACLs commands write, as xo-server's commands honour
them: the set's constraints on who and what (`check_constraints`), its quotas charged and given
back (`charged`, `release`), what a VM weighs (`vm_usage`), a VM moved into or out of a set, and
the `admin` ACLs a creator or a set's subjects get on a new VM.

A VM belongs to a set when its `other_config["xo:resource_set"]` holds the set's id as a JSON
string (the cache shows it as the VM's `resourceSet`). Charges are made before the XAPI calls
they pay for and given back if those fail, so a refused charge (code 24) changes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from xod.api import errors
from xod.api.barriers import caught_up
from xod.api.commands import Command
from xod.api.methods.resource_set import RESOURCE_SET_KEY, vm_resources_usage
from xod.api.methods.xapi_calls import update_other_config
from xod.api.services import Services
from xod.cache.store import ObjectStore
from xod.store import NoSuchResourceSet, NotEnoughResources, ResourceSet, User

# The role a creator (or a set's subjects) gets on a new VM.
CREATOR_ROLE = "admin"

Limits = Mapping[str, int]


def get_set(services: Services, set_id: str) -> ResourceSet:
    try:
        return services.store.resource_sets.get(set_id)
    except NoSuchResourceSet:
        raise errors.no_such_object(set_id, "resourceSet") from None


def set_of_vm(services: Services, vm: Mapping[str, Any]) -> ResourceSet | None:
    """The set the VM is in; None when it is in none, or when its set was deleted (as in
    xo-server, the VM then behaves as a VM in no set)."""
    set_id = vm.get("resourceSet")
    if not set_id:
        return None
    try:
        return services.store.resource_sets.get(set_id)
    except NoSuchResourceSet:
        return None


def is_subject(user: User | None, resource_set: ResourceSet) -> bool:
    """The user (or one of its groups) is among the set's subjects."""
    return user is not None and not {user.id, *user.groups}.isdisjoint(resource_set["subjects"])


def check_constraints(
    services: Services, set_id: str, user: User | None, object_ids: Iterable[str] = ()
) -> ResourceSet:
    """xo-server's checkResourceSetConstraints: the caller is a subject of the set (itself or
    one of its groups; admins always are) and every object is one the set offers — or code 2."""
    resource_set = get_set(services, set_id)
    if user is not None and user.permission != "admin" and not is_subject(user, resource_set):
        raise errors.unauthorized()
    offered = set(resource_set["objects"])
    for object_id in object_ids:
        if object_id not in offered:
            raise errors.unauthorized()
    return resource_set


def allocate(services: Services, set_id: str, limits: Limits, user: User | None) -> None:
    """Charge `limits` to the set; past a total, code 24 unless the caller is an admin (or the
    daemon itself), whose charges are forced as in xo-server."""
    force = user is None or user.permission == "admin"
    try:
        services.store.resource_sets.allocate(limits, set_id, force)
    except NotEnoughResources as error:
        raise errors.not_enough_resources(error.data) from None
    except NoSuchResourceSet:
        raise errors.no_such_object(set_id, "resourceSet") from None


def release(services: Services, set_id: str, limits: Limits) -> None:
    """Give `limits` back to the set (a set deleted meanwhile has nothing to get back)."""
    with contextlib.suppress(NoSuchResourceSet):
        services.store.resource_sets.release(limits, set_id)


@contextlib.contextmanager
def charged(services: Services, set_id: str, limits: Limits, user: User | None) -> Iterator[None]:
    """`limits` charged for the duration of the block, given back if the block fails."""
    allocate(services, set_id, limits, user)
    try:
        yield
    except BaseException:
        release(services, set_id, limits)
        raise


async def fresh(command: Command, vm: dict[str, Any], *, weighed: bool = False) -> dict[str, Any]:
    """The VM as the cache shows it once the caller's own earlier writes are in, when it is in a
    set (or is `weighed` anyway): actions do not wait for those writes, but what a VM weighs
    must count them (a `vm.set` of its vCPUs just before)."""
    if command.client is not None and (weighed or vm.get("resourceSet")):
        await caught_up(command.client)
        return command.store.get(vm["id"]) or vm
    return vm


def vm_usage(store: ObjectStore, vm: Mapping[str, Any]) -> dict[str, int]:
    """What a VM (or snapshot) weighs in a set (xo-server's computeVmResourcesUsage)."""
    return vm_resources_usage(vm, store.get)


def set_of_disk(store: ObjectStore, vdi: Mapping[str, Any]) -> str | None:
    """The set of the first VM (in a set) the disk is attached to, as xo-server's vdi.delete."""
    for vbd_id in vdi.get("$VBDs") or ():
        vm = store.get((store.get(vbd_id) or {}).get("VM") or "")
        if vm is not None and vm.get("resourceSet"):
            return str(vm["resourceSet"])
    return None


# -- ACLs ---------------------------------------------------------------------------------------


def _changed(services: Services, subjects: Iterable[str]) -> None:
    """The ACLs of `subjects` changed: their members' grants and views may have."""
    subjects = set(subjects)
    access = services.access
    access.changed(access.members_of(subjects), subjects=subjects)


def grant_admin(services: Services, subjects: Iterable[str], object_id: str) -> None:
    subjects = list(subjects)
    for subject in subjects:
        services.store.acls.add(subject, object_id, CREATOR_ROLE)
    if subjects:
        _changed(services, subjects)


def drop_acls(services: Services, object_id: str) -> None:
    """Every ACL on the object removed (it is gone, or changed hands)."""
    removed = services.store.acls.remove_for_object(object_id)
    if removed:
        _changed(services, (acl.subject for acl in removed))


def give_to_creator(command: Command, object_id: str | None) -> None:
    """As xo-server: a non-admin who creates a VM, clone or snapshot gets `admin` on it. A
    `write` user already administrates everything: it gets none (nothing to clean up later)."""
    user = command.user
    if object_id and user is not None and user.permission not in ("admin", "write"):
        grant_admin(command.commands.services, [user.id], object_id)


# -- a VM's set -----------------------------------------------------------------------------------


async def write_vm_set(command: Command, vm_ref: str, set_id: str | None) -> None:
    """The VM's `xo:resource_set` (None: removed)."""
    value = None if set_id is None else orjson.dumps(set_id).decode()
    await update_other_config(command, "VM", vm_ref, RESOURCE_SET_KEY, value)


def share_vm(services: Services, vm_id: str, set_id: str) -> None:
    """`admin` on the VM for every subject of its set (`share`)."""
    grant_admin(services, get_set(services, set_id)["subjects"], vm_id)


async def move_vm(command: Command, vm: Mapping[str, Any], set_id: str | None) -> None:
    """xo-server's setVmResourceSet: the VM's usage charged to the new set (forced) and given
    back to the old one, its `xo:resource_set` rewritten, its ACLs dropped when it leaves a set,
    and the new set's subjects made its admins."""
    services = command.commands.services
    previous = vm.get("resourceSet")
    if set_id == previous:
        return
    usage = vm_usage(command.store, vm)
    if set_id is not None:
        allocate(services, set_id, usage, None)
    try:
        await write_vm_set(command, vm["_xapiRef"], set_id)
    except BaseException:
        if set_id is not None:
            release(services, set_id, usage)
        raise
    if previous is not None:
        release(services, previous, usage)
        drop_acls(services, vm["id"])
    if set_id is not None:
        share_vm(services, vm["id"], set_id)
