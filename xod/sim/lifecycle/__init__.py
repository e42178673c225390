"""VM, host and pool lifecycle messages, one module per job: `domains` (the steps operations
share), `power` (start, shutdown, reboot, suspend), `migration` (live and storage migration),
`copies` (clone, copy, snapshot, revert, destroy), `hosts` (host and pool), `setters`
(explicit setters); `devices` (VIF/VBD plugging, VDI and SR calls), `networking` (networks,
PIFs, bonds, VLANs), `pool_admin` (leaving the pool, host settings and plugins), `provision`
(what creating and configuring a VM needs)."""

from __future__ import annotations

from xod.sim.implicit import CreateHook
from xod.sim.lifecycle import (
    copies,
    devices,
    hosts,
    migration,
    networking,
    pool_admin,
    power,
    provision,
    setters,
)
from xod.sim.registry import Registry

CREATE_HOOKS: dict[str, CreateHook] = {
    **copies.CREATE_HOOKS,
    **devices.CREATE_HOOKS,
    **networking.CREATE_HOOKS,
    **provision.CREATE_HOOKS,
}


def register(registry: Registry) -> None:
    # provision last: it wraps the host.call_plugin that pool_admin registers.
    for module in (power, migration, copies, hosts, setters, devices, networking, pool_admin):
        module.register(registry)
    provision.register(registry)
