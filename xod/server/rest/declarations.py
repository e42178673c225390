"""What the REST API can do to objects, declared once: the actions of each object type (XO's
REST names and bodies, each run as a JSON-RPC method — the same command objects), the
PATCH-able fields, the taggable and deletable types. The handlers and the OpenAPI document are
both generated from these declarations.

Bodies are written in the XO params dialect (xod/api/schema.py), validated with it, and
published as JSON Schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from xod.api.methods.tag import TAGGABLE
from xod.api.schema import ParamsValidator

Params = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
OPTIONAL_STRING = {"type": "string", "optional": True}


def _same(method_params: dict[str, Any] | None = None) -> Params:
    """An action whose JSON-RPC params are the object id plus fixed ones."""
    return lambda obj, body: {"id": obj["id"], **(method_params or {})}


@dataclass(frozen=True)
class RestAction:
    name: str
    method: str
    description: str
    to_params: Params = field(default_factory=_same)
    body: dict[str, Any] = field(default_factory=dict)
    # The result is the id of a new object: `?sync=true` answers 201 with its Location.
    creates: bool = False

    @cached_property
    def validator(self) -> ParamsValidator:
        return ParamsValidator(self.body)


def _start(vm: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    params = {"id": vm["id"]}
    if body.get("hostId"):
        params["host"] = body["hostId"]
    return params


def _named(suffix: str) -> Params:
    def params(vm: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        return {"id": vm["id"], "name": body.get("name_label") or f"{vm['name_label']}{suffix}"}

    return params


def _snapshot(vm: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    params = {"id": vm["id"]}
    if body.get("name_label"):
        params["name"] = body["name_label"]
    return params


def _clone(vm: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {**_named(" (clone)")(vm, body), "full_copy": not body.get("fast", True)}


def _migrate(vm: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    params = {"vm": vm["id"], "targetHost": body["hostId"]}
    if body.get("srId"):
        params["sr"] = body["srId"]
    if body.get("srIdByVdiId"):
        params["mapVdisSrs"] = body["srIdByVdiId"]
    return params


_POWER = [
    RestAction("start", "vm.start", "start the VM", _start, {"hostId": OPTIONAL_STRING}),
    RestAction("clean_shutdown", "vm.stop", "shut the VM down cleanly"),
    RestAction("hard_shutdown", "vm.stop", "power the VM off", _same({"force": True})),
    RestAction("clean_reboot", "vm.restart", "reboot the VM cleanly"),
    RestAction("hard_reboot", "vm.restart", "reset the VM", _same({"force": True})),
    RestAction("pause", "vm.pause", "pause the VM"),
    RestAction("unpause", "vm.unpause", "unpause the VM"),
    RestAction("suspend", "vm.suspend", "suspend the VM"),
    RestAction("resume", "vm.resume", "resume the suspended VM"),
]
_SNAPSHOT = RestAction(
    "snapshot", "vm.snapshot", "snapshot the VM", _snapshot, {"name_label": OPTIONAL_STRING}, True
)
_CLONE = RestAction(
    "clone",
    "vm.clone",
    "clone the VM (fast: a copy-on-write clone; fast=false: a full copy)",
    _clone,
    {"name_label": OPTIONAL_STRING, "fast": {"type": "boolean", "optional": True}},
    True,
)
_REVERT = RestAction(
    "revert_snapshot",
    "vm.revert",
    "revert the VM to one of its snapshots",
    lambda vm, body: {"snapshot": body["snapshotId"]},
    {"snapshotId": {"type": "string"}},
)
_MIGRATE = RestAction(
    "migrate",
    "vm.migrate",
    "migrate the VM to another host (and its disks to other SRs)",
    _migrate,
    {
        "hostId": {"type": "string"},
        "srId": OPTIONAL_STRING,
        "srIdByVdiId": {"type": "object", "optional": True},
    },
)

ACTIONS: dict[str, dict[str, RestAction]] = {
    "VM": {a.name: a for a in (*_POWER, _SNAPSHOT, _CLONE, _REVERT, _MIGRATE)},
    "VM-template": {a.name: a for a in (_CLONE,)},
    "host": {
        a.name: a
        for a in (
            RestAction("enable", "host.enable", "enable the host"),
            RestAction(
                "disable",
                "host.disable",
                "disable the host (autoEnable: until it restarts)",
                lambda host, body: {"id": host["id"], "transient": bool(body.get("autoEnable"))},
                {"autoEnable": {"type": "boolean", "optional": True}},
            ),
            RestAction("clean_reboot", "host.restart", "move the VMs away and reboot the host"),
        )
    },
    "task": {a.name: a for a in (RestAction("abort", "task.cancel", "cancel the task"),)},
}

# Fields a PATCH may change, and the method that changes them (both spellings on VMs).
PATCH_METHODS = {
    **dict.fromkeys(("VM", "VM-template", "VM-snapshot"), "vm.set"),
    "SR": "sr.set",
    **dict.fromkeys(("VDI", "VDI-snapshot"), "vdi.set"),
}
PATCH_BODY = {
    "name_label": OPTIONAL_STRING,
    "name_description": {"type": "string", "minLength": 0, "optional": True},
    "nameLabel": OPTIONAL_STRING,
    "nameDescription": {"type": "string", "minLength": 0, "optional": True},
    "tags": {"type": "array", "items": {"type": "string"}, "optional": True},
}
CAMEL_CASE = {"nameLabel": "name_label", "nameDescription": "name_description"}

TAGGABLE_TYPES: tuple[str, ...] = tuple(TAGGABLE)

# DELETE: the method, and the params it takes for the object.
DELETE_METHODS: dict[str, str] = {
    **dict.fromkeys(("VM", "VM-template", "VM-snapshot"), "vm.delete"),
    **dict.fromkeys(("VDI", "VDI-snapshot"), "vdi.delete"),
}
