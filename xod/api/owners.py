"""How an action reaches its pool's owner when xod runs as a cluster (xod/cluster/).

Only a pool's owner runs its actions: on any other instance the first `resolve` of the pool
raises `ForwardToOwner` (before any XAPI call), and xod/api/commands.py sends the action, as it
was asked, through the daemon's `OwnerForwarding` (set by xod/cluster/forwarding.py). Outside a
cluster `forward` stays None and nothing is ever forwarded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


class ForwardToOwner(Exception):
    """The action's pool is synced by another instance of the cluster: run it there."""

    def __init__(self, server_id: str) -> None:
        super().__init__(f"pool connection {server_id} is owned by another instance")
        self.server_id = server_id


# (server id, method, params, _async, user id) → the action's answer from the pool's owner.
Forward = Callable[[str, str, dict[str, Any], bool, str | None], Awaitable[Any]]


# How many tasks of `_async` actions forwarded from here are remembered (oldest forgotten).
FORWARDED_TASKS_LIMIT = 1000


@dataclass
class OwnerForwarding:
    """How actions reach their pool's owner; `forward` is None outside a cluster."""

    forward: Forward | None = None
    # Task id → server id of the `_async` actions forwarded from here: `task.wait` here reaches
    # their owner (which keeps the job) even once the finished task left the cache.
    tasks: OrderedDict[str, str] = field(default_factory=OrderedDict)

    def remember_task(self, task_id: str, server_id: str) -> None:
        self.tasks[task_id] = server_id
        if len(self.tasks) > FORWARDED_TASKS_LIMIT:
            self.tasks.popitem(last=False)


def forwarding_of(services: Any) -> OwnerForwarding:
    """The daemon's one OwnerForwarding (in `Services.state`)."""
    forwarding: OwnerForwarding = services.state(OwnerForwarding, OwnerForwarding)
    return forwarding
