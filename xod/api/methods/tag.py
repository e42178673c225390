"""tag.*: tags of any taggable object, forwarded to the pool master."""

from __future__ import annotations

from typing import Any

from xod.api.commands import Command, action
from xod.api.registry import Registry

# XO object type → XAPI class (every one of them has a `tags` set).
TAGGABLE = {
    "VM": "VM",
    "VM-template": "VM",
    "VM-snapshot": "VM",
    "VM-controller": "VM",
    "host": "host",
    "pool": "pool",
    "SR": "SR",
    "VDI": "VDI",
    "VDI-snapshot": "VDI",
    "network": "network",
}


def register(registry: Registry) -> None:
    async def change(command: Command, params: dict[str, Any], verb: str) -> None:
        obj = command.resolve(params["id"], tuple(TAGGABLE))
        await command.call(f"{TAGGABLE[obj['type']]}.{verb}_tags", obj["_xapiRef"], params["tag"])

    @action(registry, "tag.add", resolve=[("id", None, "administrate")])
    async def add(command: Command, params: dict[str, Any]) -> None:
        await change(command, params, "add")

    @action(registry, "tag.remove", resolve=[("id", None, "administrate")])
    async def remove(command: Command, params: dict[str, Any]) -> None:
        await change(command, params, "remove")
