"""VM, host and pool lifecycle messages, one module per job: `domains` (the steps operations
share), `power` (start, shutdown, reboot, suspend), `migration` (live and storage migration),
`copies` (clone, copy, snapshot, revert, destroy), `hosts` (host and pool), `setters`
(explicit setters), `provision` (what creating and configuring a VM needs)."""

from __future__ import annotations

from xod.sim.implicit import CreateHook
from xod.sim.lifecycle import copies, hosts, migration, power, provision, setters
from xod.sim.registry import Registry

CREATE_HOOKS: dict[str, CreateHook] = {**copies.CREATE_HOOKS, **provision.CREATE_HOOKS}


def register(registry: Registry) -> None:
    for module in (power, migration, copies, hosts, setters, provision):
        module.register(registry)
