"""message.*: the pool's alerts and notices (the `message` objects of the cache)."""

from __future__ import annotations

from typing import Any

from xod.api.commands import Command, action
from xod.api.registry import Registry


def register(registry: Registry) -> None:
    @action(registry, "message.delete", resolve=[("id", "message", "administrate")])
    async def delete(command: Command, params: dict[str, Any]) -> None:
        await command.call("message.destroy", command.ref_of(params["id"], "message"))
