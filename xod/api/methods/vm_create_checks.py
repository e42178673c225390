"""Who may create a VM (vm.create), and what a VM created in a resource set weighs, as
xo-server decides both before anything is made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xod.api.context import CallContext
from xod.api.methods import self_service
from xod.api.methods.vm_edit import parse_size
from xod.api.resolve import find_object
from xod.cache.store import ObjectStore


def authorize(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Who may create, checked before anything is made, as xo-server: `administrate` on the
    template's pool; or, with `resourceSet`, a subject of the set that offers the template and
    every SR and network named (the set's tags then go to the VM too)."""
    template = find_object(ctx.services.objects, params["template"], ("VM-template",))
    set_id = params.get("resourceSet")
    if set_id is None:
        if ctx.user is not None:
            ctx.services.access.check(ctx.user, template["$pool"], "administrate")
        return params
    objects, _ = set_charges(ctx.services.objects, template, params)
    resource_set = self_service.check_constraints(ctx.services, set_id, ctx.user, objects)
    if not resource_set["tags"]:
        return params
    return {**params, "tags": [*params.get("tags", ()), *resource_set["tags"]]}


def set_charges(
    store: ObjectStore, template: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[list[str], dict[str, int]]:
    """The objects a VM created in a set uses (template, SRs, networks) and what it weighs, as
    xo-server counts them: its vCPUs and dynamic max memory (the template's unless given), the
    sizes of its new disks and of the template's (resized ones at their new size), one VM."""
    objects = [str(template["id"])]
    memory = params.get("memoryMax", params.get("memory"))
    limits = {
        "cpus": int(params.get("CPUs", template["CPUs"]["number"])),
        "disk": 0,
        "memory": template["memory"]["dynamic"][1]
        if memory is None
        else parse_size(memory, "memory"),
        "vms": 1,
    }
    sizes: dict[str, int] = {}
    for vbd_id in template.get("$VBDs") or ():
        vbd = store.get(vbd_id) or {}
        vdi = store.get(vbd.get("VDI") or "")
        if vdi is not None and not vbd.get("is_cd_drive"):
            sizes[str(vbd.get("position"))] = int(vdi.get("size") or 0)
    for item in params.get("VDIs") or ():
        sr = item.get("SR") or item.get("$SR")
        if sr:
            objects.append(sr)
        if item.get("size") is not None:
            limits["disk"] += parse_size(item["size"], "VDIs/size")
    for position, props in (params.get("existingDisks") or {}).items():
        if props.get("size") is not None:
            sizes[str(position)] = parse_size(props["size"], "existingDisks/size")
        if props.get("$SR"):
            objects.append(props["$SR"])
    limits["disk"] += sum(sizes.values())
    objects.extend(vif["network"] for vif in params.get("VIFs") or ())
    return objects, limits
