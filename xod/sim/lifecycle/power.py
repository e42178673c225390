"""VM power operations: start, shutdown, reboot, suspend/resume, pause."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xod.sim.db import Database
from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.lifecycle.domains import (
    assert_host_usable,
    drop_suspend_vdi,
    go_down,
    go_live,
    pick_host,
    suspend_vdi,
    vm_operation,
)
from xod.sim.registry import Registry


async def vm_start(call: Call, vm: str, start_paused: bool, force: bool) -> str:
    db = call.pool.db

    def effect() -> tuple[Any, dict[str, Any]]:
        host = pick_host(db, db.get("VM", vm))
        return "", go_live(call, vm, host, start_paused)

    def check() -> None:
        pick_host(db, db.get("VM", vm))

    return await vm_operation(call, vm, "start", effect, check)


async def vm_start_on(call: Call, vm: str, host: str, start_paused: bool, force: bool) -> str:
    db = call.pool.db

    def check() -> None:
        assert_host_usable(db, host)

    def effect() -> tuple[Any, dict[str, Any]]:
        assert_host_usable(db, host)
        return "", go_live(call, vm, host, start_paused)

    return await vm_operation(call, vm, "start_on", effect, check)


# What each operation needs from the guest, and what xapi answers when the guest has no PV
# drivers: a clean shutdown or reboot needs the guest to act; a suspend needs it to save its
# state.
_GUEST_AGENT_ERRORS = {
    "clean_shutdown": "VM_LACKS_FEATURE_SHUTDOWN",
    "clean_reboot": "VM_LACKS_FEATURE_SHUTDOWN",
    "suspend": "VM_MISSING_PV_DRIVERS",
}


def _assert_guest_agent(db: Database, vm: str, code: str) -> None:
    metrics = db.find("VM_guest_metrics", db.get("VM", vm)["guest_metrics"])
    if not (metrics and metrics["PV_drivers_detected"]):
        raise XapiFailure(code, vm)


def _simple(op: str) -> Callable[..., Any]:
    """Operations that only change the power state (and domain) of a VM."""

    async def handler(call: Call, vm: str) -> str:
        def effect() -> tuple[Any, dict[str, Any]]:
            record = call.pool.db.get("VM", vm)
            if op in ("clean_shutdown", "hard_shutdown", "shutdown"):
                changes = go_down(call, vm)
                if record["power_state"] == "Suspended":
                    changes.update(drop_suspend_vdi(call.pool.db, record))
                return "", changes
            if op in ("clean_reboot", "hard_reboot"):
                host = record["resident_on"]
                go_down(call, vm)
                return "", go_live(call, vm, host, False)
            if op == "suspend":
                changes = go_down(call, vm, "Suspended")
                changes["suspend_VDI"] = suspend_vdi(call.pool.db, record)
                return "", changes
            if op == "pause":
                return "", {"power_state": "Paused"}
            return "", {"power_state": "Running"}  # unpause

        code = _GUEST_AGENT_ERRORS.get(op)
        check = (lambda: _assert_guest_agent(call.pool.db, vm, code)) if code else None
        return await vm_operation(call, vm, op, effect, check)

    handler.__name__ = f"vm_{op}"
    return handler


async def vm_resume(call: Call, vm: str, start_paused: bool, force: bool) -> str:
    db = call.pool.db

    def effect() -> tuple[Any, dict[str, Any]]:
        record = db.get("VM", vm)
        host = pick_host(db, record)
        changes = go_live(call, vm, host, start_paused)
        changes.update(drop_suspend_vdi(db, record))
        return "", changes

    return await vm_operation(call, vm, "resume", effect, lambda: pick_host(db, db.get("VM", vm)))


async def vm_resume_on(call: Call, vm: str, host: str, start_paused: bool, force: bool) -> str:
    db = call.pool.db

    def effect() -> tuple[Any, dict[str, Any]]:
        assert_host_usable(db, host)
        record = db.get("VM", vm)
        changes = go_live(call, vm, host, start_paused)
        changes.update(drop_suspend_vdi(db, record))
        return "", changes

    return await vm_operation(call, vm, "resume_on", effect, lambda: assert_host_usable(db, host))


def register(registry: Registry) -> None:
    def add(name: str, params: list[Any], handler: Callable[..., Any]) -> None:
        registry.add(name, params, handler, async_capable=True)

    vm = ("vm", "ref:VM")
    paused_force = [("start_paused", "bool"), ("force", "bool")]
    add("VM.start", [vm, *paused_force], vm_start)
    add("VM.start_on", [vm, ("host", "ref:host"), *paused_force], vm_start_on)
    for op in (
        "clean_shutdown",
        "hard_shutdown",
        "shutdown",
        "clean_reboot",
        "hard_reboot",
        "suspend",
        "pause",
        "unpause",
    ):
        add(f"VM.{op}", [vm], _simple(op))
    add("VM.resume", [vm, *paused_force], vm_resume)
    add("VM.resume_on", [vm, ("host", "ref:host"), *paused_force], vm_resume_on)
