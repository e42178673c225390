"""Pool membership and host administration: `pool.eject`, `host.forget`, the scheduler
granularity, iSCSI/multipathing settings, and the host plugins Xen Orchestra calls
(`updater.py check_update` answers a JSON list of updates, as XCP-ng's plugin does).

Leaving the pool: the master can be neither ejected nor forgotten (xapi asks to designate
another master first); a host with running guests cannot be ejected (HOST_IN_USE); a host that
is still alive cannot be forgotten (HOST_IS_LIVE). Either way its PIFs, PBDs, metrics and
control domain leave the pool database with it.
"""

from __future__ import annotations

from typing import Any

import orjson

from xod.sim.db import Database
from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.registry import Registry

# What a simulated XCP-ng 8.3 host has to update: one package, in the plugin's own shape.
AVAILABLE_UPDATES: list[dict[str, Any]] = [
    {
        "name": "xcp-ng-xapi-plugins",
        "version": "1.11.0",
        "release": "1.xcpng8.3",
        "description": "XAPI plugins for XCP-ng",
        "changelog": {
            "date": 1764547200,
            "author": "Simulated Packager <packager@xcp-ng.org> - 1.11.0-1",
            "description": "- Simulated maintenance release",
        },
        "url": "https://github.com/xcp-ng/xcp-ng-xapi-plugins",
        "size": 61440,
        "license": "AGPLv3",
    }
]
DEFAULT_SCHED_GRAN = "cpu"


def host_call_plugin(call: Call, host: str, plugin: str, fn: str, args: dict[str, Any]) -> str:
    call.pool.db.get("host", host)
    if (plugin, fn) == ("updater.py", "check_update"):
        return orjson.dumps(AVAILABLE_UPDATES).decode()
    return ""


def host_get_sched_gran(call: Call, host: str) -> str:
    call.pool.db.get("host", host)
    return DEFAULT_SCHED_GRAN


def _host_setter(field: str) -> Any:
    def handler(call: Call, host: str, value: Any) -> str:
        call.pool.db.get("host", host)
        call.pool.db.update("host", host, {field: value})
        return ""

    return handler


def _assert_not_master(call: Call, host: str, action: str) -> dict[str, Any]:
    record = call.pool.db.get("host", host)
    if host == call.pool.master:
        raise XapiFailure("OPERATION_NOT_ALLOWED", f"Cannot {action} the pool master")
    return record


def _remove_host(call: Call, host: str) -> None:
    db: Database = call.pool.db
    record = db.get("host", host)
    for vm in list(record["resident_VMs"]):
        vm_record = db.find("VM", vm)
        if vm_record is None:
            continue
        if vm_record["is_control_domain"]:
            db.delete("VM", vm)
        else:  # a dead host's guests are halted, as xapi does when it forgets a host
            db.update("VM", vm, {"resident_on": "OpaqueRef:NULL", "power_state": "Halted"})
    for cls, refs in (("PIF", record["PIFs"]), ("PBD", record["PBDs"])):
        for ref in list(refs):
            if db.find(cls, ref) is not None:
                db.delete(cls, ref)
    db.delete("host", host)
    if db.find("host_metrics", record["metrics"]) is not None:
        db.delete("host_metrics", record["metrics"])
    call.pool.forget_host(host)


async def pool_eject(call: Call, host: str) -> str:
    record = _assert_not_master(call, host, "eject")
    db = call.pool.db
    for vm in record["resident_VMs"]:
        vm_record = db.find("VM", vm)
        if vm_record is not None and not vm_record["is_control_domain"]:
            raise XapiFailure("HOST_IN_USE", host, "VM", vm)
    await call.work()
    _remove_host(call, host)
    return ""


async def host_forget(call: Call, host: str) -> str:
    record = _assert_not_master(call, host, "forget")
    metrics = call.pool.db.find("host_metrics", record["metrics"])
    if metrics is not None and metrics["live"]:
        raise XapiFailure("HOST_IS_LIVE", host)
    await call.work()
    _remove_host(call, host)
    return ""


def register(registry: Registry) -> None:
    host = ("host", "ref:host")
    registry.add(
        "host.call_plugin",
        [host, ("plugin", "string"), ("fn", "string"), ("args", "map")],
        host_call_plugin,
        async_capable=True,
    )
    registry.add("host.get_sched_gran", [host], host_get_sched_gran)
    registry.add("host.set_iscsi_iqn", [host, ("value", "string")], _host_setter("iscsi_iqn"))
    registry.add("host.set_multipathing", [host, ("value", "bool")], _host_setter("multipathing"))
    registry.add("pool.eject", [host], pool_eject, async_capable=True)
    registry.add("host.forget", [host], host_forget, async_capable=True)
