"""VM power-state rules (`xapi_vm_lifecycle.ml`): which power states allow an operation, and
the `allowed_operations` a VM advertises."""

from __future__ import annotations

from typing import Any

from xod.sim.errors import XapiFailure

_ALL = ("Halted", "Paused", "Suspended", "Running")

# allowed_power_states, in the order xapi lists them (VM_BAD_POWER_STATE's "expected" text).
ALLOWED_POWER_STATES: dict[str, tuple[str, ...]] = {
    "start": ("Halted",),
    "start_on": ("Halted",),
    "provision": ("Halted",),
    "make_into_template": ("Halted",),
    "unpause": ("Paused",),
    "resume": ("Suspended",),
    "resume_on": ("Suspended",),
    "clean_reboot": ("Running",),
    "clean_shutdown": ("Running",),
    "pause": ("Running",),
    "pool_migrate": ("Running",),
    "suspend": ("Running",),
    "changing_VCPUs_live": ("Running",),
    "changing_memory_live": ("Running",),
    "send_sysrq": ("Running",),
    "send_trigger": ("Running",),
    "call_plugin": ("Running",),
    "changing_dynamic_range": ("Halted", "Running"),
    "changing_VCPUs": ("Halted",),
    "changing_static_range": ("Halted",),
    "changing_memory_limits": ("Halted",),
    "changing_shadow_memory": ("Halted",),
    "clone": ("Halted",),
    "copy": ("Halted",),
    "export": ("Halted", "Suspended"),
    "hard_reboot": ("Paused", "Running"),
    "checkpoint": ("Paused", "Suspended", "Running"),
    "shutdown": ("Paused", "Suspended", "Running"),
    "hard_shutdown": ("Paused", "Suspended", "Running"),
    "migrate_send": ("Halted", "Suspended", "Running"),
    "snapshot": _ALL,
    "revert": _ALL,
    "metadata_export": _ALL,
    "destroy": ("Halted", "Suspended"),
}
# Snapshots may also be cloned/copied while suspended (checkpoints).
_SNAPSHOT_EXTRA = {"clone": ("Halted", "Suspended"), "copy": ("Halted", "Suspended")}

# What templates and snapshots may do at all (other ops -> VM_IS_TEMPLATE / VM_IS_SNAPSHOT).
_TEMPLATE_OPS = frozenset(
    {
        "clone",
        "copy",
        "provision",
        "export",
        "metadata_export",
        "destroy",
        "make_into_template",
        "changing_VCPUs",
        "changing_static_range",
        "changing_memory_limits",
        "changing_dynamic_range",
        "changing_shadow_memory",
    }
)
_SNAPSHOT_OPS = frozenset({"clone", "copy", "revert", "export", "metadata_export", "destroy"})
_CONTROL_DOMAIN_OPS = frozenset({"changing_dynamic_range", "changing_memory_live"})


def allowed_power_states(record: dict[str, Any], op: str) -> tuple[str, ...]:
    if record["is_a_snapshot"] and op in _SNAPSHOT_EXTRA:
        return _SNAPSHOT_EXTRA[op]
    return ALLOWED_POWER_STATES.get(op, _ALL)


def operation_error(ref: str, record: dict[str, Any], op: str) -> XapiFailure | None:
    """Why `op` cannot run on the VM now (xapi's check order), or None."""
    blocked = record["blocked_operations"].get(op)
    if blocked is not None:
        return XapiFailure("OPERATION_BLOCKED", ref, blocked)
    allowed = allowed_power_states(record, op)
    state = record["power_state"]
    if state not in allowed:
        return XapiFailure(
            "VM_BAD_POWER_STATE", ref, ", ".join(s.lower() for s in allowed), state.lower()
        )
    current = record["current_operations"]
    if current:
        tasks = list(current)
        ops = list(current.values())
        return XapiFailure(
            "OTHER_OPERATION_IN_PROGRESS",
            "VM",
            ref,
            ops[0] if len(ops) == 1 else "{" + ",".join(ops) + "}",
            tasks[0] if len(tasks) == 1 else "{" + ",".join(tasks) + "}",
        )
    if record["is_control_domain"] and op not in _CONTROL_DOMAIN_OPS:
        return XapiFailure("OPERATION_NOT_ALLOWED", f"{op} is not allowed on a control domain")
    # Snapshots are templates too; their own rule decides.
    if record["is_a_snapshot"]:
        if op not in _SNAPSHOT_OPS:
            return XapiFailure("VM_IS_SNAPSHOT", ref, op)
    elif record["is_a_template"] and op not in _TEMPLATE_OPS:
        return XapiFailure("VM_IS_TEMPLATE", ref, op)
    return None


_ADVERTISED = (
    "snapshot",
    "clone",
    "copy",
    "revert",
    "checkpoint",
    "provision",
    "start",
    "start_on",
    "pause",
    "unpause",
    "clean_shutdown",
    "clean_reboot",
    "hard_shutdown",
    "hard_reboot",
    "suspend",
    "resume",
    "resume_on",
    "pool_migrate",
    "migrate_send",
    "shutdown",
    "changing_memory_live",
    "changing_dynamic_range",
    "changing_static_range",
    "changing_memory_limits",
    "changing_shadow_memory",
    "changing_VCPUs",
    "changing_VCPUs_live",
    "make_into_template",
    "export",
    "metadata_export",
    "destroy",
    "send_sysrq",
    "send_trigger",
    "call_plugin",
)
_CACHE: dict[tuple[str, bool, bool, bool], list[str]] = {}


def allowed_operations(record: dict[str, Any]) -> list[str]:
    """The VM's allowed_operations now: every advertised op whose check passes. Shared lists
    (never mutated) per kind of VM, so the workload builder pays nothing per VM."""
    if record["current_operations"]:
        return []
    key = (
        record["power_state"],
        record["is_a_template"],
        record["is_a_snapshot"],
        record["is_control_domain"],
    )
    cached = _CACHE.get(key)
    if cached is None:
        probe = {
            "power_state": key[0],
            "is_a_template": key[1],
            "is_a_snapshot": key[2],
            "is_control_domain": key[3],
            "current_operations": {},
            "blocked_operations": {},
        }
        cached = [op for op in _ADVERTISED if operation_error("", probe, op) is None]
        _CACHE[key] = cached
    return cached
