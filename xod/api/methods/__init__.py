"""The API methods, one module per namespace; `build_registry()` declares them all."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from xod.api.methods import server, session, system, token, user, xo
from xod.api.methods import transfers as transfer_methods  # vm.export/import, vdi.*Content
from xod.api.registry import Registry
from xod.api.schema import SCHEMAS_DIR

from . import (  # actions (xod/api/commands.py)
    host,
    sr,
    stats,  # vm.stats, host.stats, sr.stats (a host's /rrd_updates)
    tag,
    task,
    vdi,
    vm,
)
from . import xod as live  # xod.subscribe… (xod/server/fanout.py)

NAMESPACES: tuple[ModuleType, ...] = (system, session, token, user, server, xo)
NAMESPACES += (vm, host, sr, vdi, tag, task)
NAMESPACES += (live,)
NAMESPACES += (stats,)
NAMESPACES += (transfer_methods,)


def build_registry(schemas_dir: Path = SCHEMAS_DIR) -> Registry:
    registry = Registry(schemas_dir)
    for module in NAMESPACES:
        module.register(registry)
    return registry
