"""The API methods, one module per namespace; `build_registry()` declares them all."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from xod.api.methods import (
    acl,
    cloud_config,
    group,
    resource_set,
    role,
    server,
    session,
    system,
    token,
    user,
    xo,
)
from xod.api.methods import transfers as transfer_methods  # vm.export/import, vdi.*Content
from xod.api.registry import Registry
from xod.api.schema import SCHEMAS_DIR

from . import (  # actions (xod/api/commands.py)
    disk,  # disk.create
    host,
    message,
    network,
    pif,
    pool,
    sr,
    stats,  # vm.stats, host.stats, sr.stats (a host's /rrd_updates)
    tag,
    task,
    vbd,
    vdi,
    vif,
    vm,
)
from . import xod as live  # xod.subscribe… (xod/server/fanout.py)

NAMESPACES: tuple[ModuleType, ...] = (system, session, token, user, server, xo)
NAMESPACES += (vm, host, sr, vdi, tag, task)
NAMESPACES += (vif, vbd, disk, network, pif, pool, message)
NAMESPACES += (live,)
NAMESPACES += (stats,)
NAMESPACES += (cloud_config,)
NAMESPACES += (acl, group, role, resource_set)
NAMESPACES += (transfer_methods,)


def build_registry(schemas_dir: Path = SCHEMAS_DIR) -> Registry:
    registry = Registry(schemas_dir)
    for module in NAMESPACES:
        module.register(registry)
    return registry
