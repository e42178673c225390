"""How an action reaches its pool's owner when xod runs as a cluster (xod/cluster/).

Only a pool's owner runs its actions: on any other instance the first `resolve` of the pool
raises `ForwardToOwner` (before any XAPI call), and xod/api/commands.py sends the action, as it
was asked, through the daemon's `OwnerForwarding` (set by xod/cluster/forwarding.py). Outside a
cluster `forward` stays None and nothing is ever forwarded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


class ForwardToOwner(Exception):
    """The action's pool is synced by another instance of the cluster: run it there."""

    def __init__(self, server_id: str) -> None:
        super().__init__(f"pool connection {server_id} is owned by another instance")
        self.server_id = server_id


# (server id, method, params, _async, user id) → the action's answer from the pool's owner.
Forward = Callable[[str, str, dict[str, Any], bool, str | None], Awaitable[Any]]


@dataclass
class OwnerForwarding:
    """How actions reach their pool's owner; `forward` is None outside a cluster."""

    forward: Forward | None = None


def forwarding_of(services: Any) -> OwnerForwarding:
    """The daemon's one OwnerForwarding (in `Services.state`)."""
    forwarding: OwnerForwarding = services.state(OwnerForwarding, OwnerForwarding)
    return forwarding
