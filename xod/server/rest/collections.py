"""The collections of `/rest/v0`: one per XO object type of the cache (`VM` → `vms`,
`VM-template` → `vm-templates`, …), plus `servers` and `users` (read through their JSON-RPC
methods, so they carry the same permission), and the sub-collections of an object."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from xod.api.dispatch import check_permission
from xod.api.views import visible_to
from xod.cache.objects import XO_TYPES
from xod.server.rest.context import BASE, Caller, RestContext
from xod.server.rest.errors import RestError

# Objects and hrefs, in the order they are listed.
Items = Iterator[tuple[dict[str, Any], str]]
# Whether the caller may see an object (None: everything).
Visible = Callable[[str], bool] | None

CACHE_TYPES: tuple[str, ...] = tuple(t for types in XO_TYPES.values() for t in types)
# XO-side collections and the JSON-RPC method that lists them.
METHOD_COLLECTIONS = {"servers": "server.getAll", "users": "user.getAll"}
# The permission to read the cache: the one of xo.getAllObjects, whatever it is.
READ_METHOD = "xo.getAllObjects"
VM_TYPES = ("VM", "VM-snapshot", "VM-template", "VM-controller")


def collection_name(xo_type: str) -> str:
    return f"{xo_type.lower()}s"


TYPE_OF_COLLECTION: dict[str, str] = {collection_name(t): t for t in CACHE_TYPES}
COLLECTION_NAMES: tuple[str, ...] = (*TYPE_OF_COLLECTION, *METHOD_COLLECTIONS)


def href_of(obj: dict[str, Any]) -> str:
    """An object's canonical URL (sub-collections point there too)."""
    return f"{BASE}/{collection_name(obj['type'])}/{obj['id']}"


@dataclass(frozen=True, slots=True)
class Collection:
    name: str
    xo_type: str | None  # None: an XO-side collection (servers, users)

    def href(self, obj: dict[str, Any]) -> str:
        return f"{BASE}/{self.name}/{obj['id']}"


def collection(name: str) -> Collection:
    if name in TYPE_OF_COLLECTION:
        return Collection(name, TYPE_OF_COLLECTION[name])
    if name in METHOD_COLLECTIONS:
        return Collection(name, None)
    raise RestError(404, f"no such collection {name}")


def require_read(rest: RestContext, caller: Caller) -> None:
    method = rest.dispatcher.registry.get(READ_METHOD)
    assert method is not None
    check_permission(method.permission, caller.user)


async def items(rest: RestContext, caller: Caller, coll: Collection) -> Items:
    """Every object of a collection with its href, from a snapshot taken now (the store
    replaces objects instead of mutating them: a list of the current ones is a snapshot)."""
    if coll.xo_type is None:
        listed = await rest.call(caller, METHOD_COLLECTIONS[coll.name], {})
        return ((obj, coll.href(obj)) for obj in listed)
    require_read(rest, caller)
    objects = list(rest.services.objects.by_type(coll.xo_type).values())
    visible = visible_to(rest.services, caller.user)
    if visible is not None:  # only what the caller may see (xod/api/views.py)
        objects = [obj for obj in objects if visible(obj["id"])]
    base = f"{BASE}/{coll.name}/"
    if coll.xo_type == "task":
        return _tasks(rest, objects, visible)
    return ((obj, base + obj["id"]) for obj in objects)


def _tasks(rest: RestContext, cached: list[dict[str, Any]], visible: Visible) -> Items:
    """REST action tasks first (XO's task shape), then the pool's other XAPI tasks."""
    records = [t for t in rest.tasks.values() if visible is None or visible(t.object_id)]
    shown = {task.id for task in rest.tasks.values()}
    base = f"{BASE}/tasks/"
    for task in records:
        yield task.view(), base + task.id
    for obj in cached:
        if obj["id"] not in shown:
            yield obj, base + obj["id"]


async def find(
    rest: RestContext, caller: Caller, coll: Collection, object_id: str
) -> dict[str, Any]:
    """One object of a collection; 404 JSON for an unknown id or one of another type."""
    if coll.xo_type is None:
        for obj, _href in await items(rest, caller, coll):
            if obj.get("id") == object_id:
                return obj
    else:
        require_read(rest, caller)
        # An object the caller may not see is as unknown as one that does not exist.
        visible = visible_to(rest.services, caller.user)
        if coll.xo_type == "task":
            task = rest.tasks.get(object_id)
            if task is not None and (visible is None or visible(task.object_id)):
                return task.view()
        cached = rest.services.objects.get(object_id)
        shown = cached is not None and (visible is None or visible(object_id))
        if shown and cached is not None and cached["type"] == coll.xo_type:
            return cached
    raise RestError(
        404,
        f"no such {coll.xo_type or coll.name[:-1]} {object_id}",
        {"id": object_id, "type": coll.xo_type or coll.name[:-1]},
    )


# -- sub-collections -----------------------------------------------------------------------------

SUB_COLLECTIONS = ("messages", "tasks", "vdis")


def sub_items(rest: RestContext, caller: Caller, obj: dict[str, Any], sub: str) -> Items:
    visible = visible_to(rest.services, caller.user)
    for item, href in _sub_items(rest, obj, sub):
        if visible is None or visible(item["id"]):
            yield item, href


def _sub_items(rest: RestContext, obj: dict[str, Any], sub: str) -> Items:
    store = rest.services.objects
    object_id = obj["id"]
    if sub == "messages":
        for message in list(store.by_type("message").values()):
            if message.get("$object") == object_id:
                yield message, href_of(message)
    elif sub == "tasks":
        for task in rest.tasks.values():
            if task.object_id == object_id:
                yield task.view(), f"{BASE}/tasks/{task.id}"
        for task_obj in list(store.by_type("task").values()):
            if task_obj.get("applies_to") == object_id and rest.tasks.get(task_obj["id"]) is None:
                yield task_obj, href_of(task_obj)
    else:  # a VM's disks, through its VBDs
        for vbd_id in obj.get("$VBDs") or ():
            vbd = store.get(vbd_id)
            vdi = store.get(vbd["VDI"]) if vbd is not None and vbd.get("VDI") else None
            if vdi is not None:
                yield vdi, href_of(vdi)
