"""sr.*: SR changes forwarded to the pool master."""

from __future__ import annotations

from typing import Any

from xod.api.commands import Command, action
from xod.api.registry import Registry


def register(registry: Registry) -> None:
    @action(registry, "sr.set", resolve=[("id", "SR", "operate")])
    async def set_(command: Command, params: dict[str, Any]) -> None:
        ref = command.ref_of(params["id"], "SR")
        if "name_label" in params:
            await command.call("SR.set_name_label", ref, params["name_label"])
        if "name_description" in params:
            await command.call("SR.set_name_description", ref, params["name_description"])

    @action(registry, "sr.scan", resolve=[("id", "SR", "operate")])
    async def scan(command: Command, params: dict[str, Any]) -> None:
        await command.run("SR.scan", command.ref_of(params["id"], "SR"))
