"""Host and pool messages: enable/disable, reboot/shutdown, evacuate, master changes."""

from __future__ import annotations

from typing import Any

from xod.sim.db import Database
from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.lifecycle.domains import host_is_usable, next_domid
from xod.sim.registry import Registry
from xod.sim.values import NULL_REF, now


def _non_control_residents(db: Database, host: str) -> list[str]:
    return [
        vm
        for vm in db.get("host", host)["resident_VMs"]
        if vm in db.tables["VM"] and not db.tables["VM"][vm]["is_control_domain"]
    ]


def host_enable(call: Call, host: str) -> str:
    db = call.pool.db
    db.get("host", host)
    db.update("host", host, {"enabled": True})
    return ""


def host_disable(call: Call, host: str, auto_enable: bool) -> str:
    db = call.pool.db
    db.get("host", host)
    db.update("host", host, {"enabled": False})
    return ""


def _assert_can_power_off(db: Database, host: str) -> None:
    if db.get("host", host)["enabled"]:
        raise XapiFailure("HOST_NOT_DISABLED")
    residents = _non_control_residents(db, host)
    if residents:
        raise XapiFailure("HOST_IN_USE", host, "VM", residents[0])


async def host_reboot(call: Call, host: str) -> str:
    db = call.pool.db
    _assert_can_power_off(db, host)
    metrics = db.get("host", host)["metrics"]
    db.update("host_metrics", metrics, {"live": False, "last_updated": now()})
    await call.work()
    db.update("host_metrics", metrics, {"live": True, "last_updated": now()})
    db.update("host", host, {"enabled": True})
    return ""


async def host_shutdown(call: Call, host: str) -> str:
    db = call.pool.db
    _assert_can_power_off(db, host)
    await call.work()
    db.update(
        "host_metrics", db.get("host", host)["metrics"], {"live": False, "last_updated": now()}
    )
    return ""


async def host_evacuate(call: Call, host: str, network: str, batch_size: int) -> str:
    db = call.pool.db
    db.get("host", host)
    residents = _non_control_residents(db, host)
    targets = [ref for ref in db.tables["host"] if ref != host and host_is_usable(db, ref)]
    if residents and not targets:
        raise XapiFailure("NO_HOSTS_AVAILABLE")
    await call.work()
    for index, vm in enumerate(residents):
        target = targets[index % len(targets)]
        record = db.find("VM", vm)
        if record is None or record["resident_on"] != host:
            continue
        changes = {"resident_on": target, "domid": next_domid(db, target)}
        db.update("VM", vm, changes)
    return ""


def host_get_servertime(call: Call, host: str) -> str:
    call.pool.db.get("host", host)
    return now()


def host_call_plugin(call: Call, host: str, plugin: str, fn: str, args: dict[str, Any]) -> str:
    call.pool.db.get("host", host)
    return ""


async def pool_designate_new_master(call: Call, host: str) -> str:
    call.pool.db.get("host", host)
    await call.work()
    call.pool.designate_new_master(host)
    return ""


def pool_emergency_transition_to_master(call: Call) -> str:
    call.pool.designate_new_master(call.host)
    return ""


def register(registry: Registry) -> None:
    host = ("host", "ref:host")
    for name, params, handler in (
        ("host.enable", [host], host_enable),
        ("host.disable", [host, ("auto_enable", "bool", True)], host_disable),
        ("host.reboot", [host], host_reboot),
        ("host.shutdown", [host], host_shutdown),
        (
            "host.evacuate",
            [host, ("network", "ref:network", NULL_REF), ("batch_size", "int", 0)],
            host_evacuate,
        ),
        (
            "host.call_plugin",
            [host, ("plugin", "string"), ("fn", "string"), ("args", "map")],
            host_call_plugin,
        ),
        ("pool.designate_new_master", [host], pool_designate_new_master),
    ):
        registry.add(name, params, handler, async_capable=True)
    registry.add("host.get_servertime", [host], host_get_servertime)
    registry.add("host.get_server_localtime", [host], host_get_servertime)
    registry.add(
        "pool.emergency_transition_to_master",
        [],
        pool_emergency_transition_to_master,
        async_capable=True,
        slave_ok=True,
    )
