"""Every XAPI error an action can meet arrives as an XO error (the table of xod/api/errors.py):
through a real socket where the simulator produces it, table-driven for the rest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.api.harness import RpcError, connect
from tests.api.test_commands_support import Env, commands_env
from xod.api import errors
from xod.xapi.errors import XapiError


async def _error(env: Env, method: str, params: dict) -> RpcError:
    with pytest.raises(RpcError) as raised:
        await env.client.call(method, params)
    return raised.value


def _no_pv_drivers(env: Env, vm_id: str) -> None:
    metrics = env.sim_record("VM", vm_id)["guest_metrics"]
    env.sim.pool.db.update("VM_guest_metrics", metrics, {"PV_drivers_detected": False})


async def test_another_operation_in_progress(tmp_path: Path) -> None:
    async with commands_env(tmp_path, op_durations={"VM.start": 2.0}) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        async with connect(env.app) as starter:  # one call at a time per connection
            await starter.sign_in()
            start = asyncio.create_task(starter.call("vm.start", {"id": vm_id}))
            async with asyncio.timeout(5):  # until the start shows in the VM's operations
                while not env.sim_record("VM", vm_id)["current_operations"]:
                    await asyncio.sleep(0.02)
            error = await _error(env, "vm.delete", {"id": vm_id})
            assert (error.code, error.error["message"]) == (25, "incorrect state")
            assert error.data["object"] == vm_id
            assert error.data["property"] == "current_operations"
            assert list(error.data["actual"].values()) == ["start"]
            assert error.data["expected"] == {}
            assert await start is True


async def test_blocked_operation(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Running"))["id"]
        ref = env.app.objects.get(vm_id)["_xapiRef"]
        env.sim.pool.db.update("VM", ref, {"blocked_operations": {"suspend": "backup window"}})
        error = await _error(env, "vm.suspend", {"id": vm_id})
        assert (error.code, error.error["message"]) == (19, "operation blocked")
        assert error.data == {"objectId": vm_id, "code": "backup window"}


async def test_vdi_in_use(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = env.app.objects.get((await env.vm_in_state("Running"))["id"])
        vbd = next(
            env.app.objects.get(v) for v in vm["$VBDs"] if not env.app.objects.get(v)["is_cd_drive"]
        )
        error = await _error(env, "vdi.delete", {"id": vbd["VDI"]})
        assert error.code == 17
        assert error.data == {"objectId": vbd["VDI"], "operation": "destroy"}


async def test_the_guest_cannot_help(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Running"))["id"]
        _no_pv_drivers(env, vm_id)
        error = await _error(env, "vm.restart", {"id": vm_id})  # a clean reboot
        assert error.code == 14
        assert error.data == {"objectId": vm_id, "feature": "shutdown"}
        error = await _error(env, "vm.suspend", {"id": vm_id})
        assert (error.code, error.error["message"]) == (11, "missing PV drivers")
        assert error.data == {"objectId": vm_id}


async def test_offline_and_disabled_hosts(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        host_id = min((await env.objects({"type": "host"})).keys())
        host = env.sim_record("host", host_id)
        db = env.sim.pool.db
        db.update("host_metrics", host["metrics"], {"live": False})
        error = await _error(env, "vm.start", {"id": vm_id, "host": host_id})
        assert (error.code, error.data) == (18, {"objectId": host_id})
        db.update("host_metrics", host["metrics"], {"live": True})
        assert await env.client.call("host.disable", {"id": host_id}) is True
        error = await _error(env, "vm.start", {"id": vm_id, "host": host_id})
        assert error.code == 25
        assert error.data == {
            "actual": False,
            "expected": True,
            "object": host_id,
            "property": "enabled",
        }


async def test_sr_full(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = env.app.objects.get((await env.vm_in_state("Halted"))["id"])
        sr_id = next(
            env.app.objects.get(env.app.objects.get(v)["VDI"])["$SR"]
            for v in vm["$VBDs"]
            if not env.app.objects.get(v)["is_cd_drive"]
        )
        sr = env.sim_record("SR", sr_id)
        env.sim.pool.db.update(
            "SR",
            env.app.objects.get(sr_id)["_xapiRef"],
            {"physical_size": sr["physical_utilisation"]},
        )
        error = await _error(env, "vm.copy", {"vm": vm["id"], "sr": sr_id})
        assert (error.code, error.error["message"]) == (21, "operation failed: SR_FULL")
        assert error.data["objectId"] == vm["id"] and error.data["code"] == "SR_FULL"
        assert error.data["params"][1] == "0"  # no room left


# -- the table, for the errors the simulator has no reason to produce --------------------------

IDS = {"OpaqueRef:vm": "vm-id", "OpaqueRef:host": "host-id", "OpaqueRef:task": "task-id"}


MAPPINGS = [
    ("EHOSTUNREACH", ["10.0.0.1"], 9, "server unreachable", {"objectId": "10.0.0.1"}),
    ("HOST_OFFLINE", ["OpaqueRef:host"], 18, "host offline", {"objectId": "host-id"}),
    ("NO_HOSTS_AVAILABLE", [], 7, "no hosts available", None),
    ("NOT_SUPPORTED_DURING_UPGRADE", [], 15, "not supported during upgrade", None),
    (
        "OPERATION_BLOCKED",
        ["OpaqueRef:vm", "locked"],
        19,
        "operation blocked",
        {"objectId": "vm-id", "code": "locked"},
    ),
    (
        "PATCH_PRECHECK_FAILED_ISO_MOUNTED",
        ["OpaqueRef:host"],
        20,
        "patch precheck failed: isoMounted",
        {"objectId": "host-id", "errorType": "isoMounted"},
    ),
    (
        "PIF_VLAN_EXISTS",
        ["OpaqueRef:pif"],
        16,
        "PIF already exists",
        {"objectId": "OpaqueRef:pif", "objectType": "PIF"},
    ),
    ("SESSION_AUTHENTICATION_FAILED", ["root", "x"], 8, "authentication failed", None),
    (
        "VDI_IN_USE",
        ["OpaqueRef:vdi", "destroy"],
        17,
        "VDI in use",
        {"objectId": "OpaqueRef:vdi", "operation": "destroy"},
    ),
    (
        "VM_BAD_POWER_STATE",
        ["OpaqueRef:vm", "halted", "running"],
        13,
        "VM state is running but should be halted",
        {"objectId": "vm-id", "expected": "halted", "actual": "running"},
    ),
    (
        "VM_IS_TEMPLATE",
        ["OpaqueRef:vm", "start"],
        12,
        "VM is a template",
        {"objectId": "vm-id"},
    ),
    (
        "VM_LACKS_FEATURE",
        ["OpaqueRef:vm", "suspend"],
        14,
        "VM lacks feature suspend",
        {"objectId": "vm-id", "feature": "suspend"},
    ),
    (
        "VM_LACKS_FEATURE_SHUTDOWN",
        ["OpaqueRef:vm"],
        14,
        "VM lacks feature shutdown",
        {"objectId": "vm-id", "feature": "shutdown"},
    ),
    (
        "VM_LACKS_FEATURE_SUSPEND",
        ["OpaqueRef:vm"],
        14,
        "VM lacks feature suspend",
        {"objectId": "vm-id", "feature": "suspend"},
    ),
    (
        "VM_MISSING_PV_DRIVERS",
        ["OpaqueRef:vm"],
        11,
        "missing PV drivers",
        {"objectId": "vm-id"},
    ),
    (
        "HANDLE_INVALID",
        ["VM", "OpaqueRef:gone"],
        1,
        "no such VM OpaqueRef:gone",
        {"id": "OpaqueRef:gone", "type": "VM"},
    ),
    (
        "OPERATION_NOT_ALLOWED",
        ["start is not allowed on a control domain"],
        5,
        "forbidden operation: vm.start",
        {"operation": "vm.start", "reason": "start is not allowed on a control domain"},
    ),
    (
        "VM_IS_SNAPSHOT",
        ["OpaqueRef:vm", "start"],
        5,
        "forbidden operation: vm.start",
        {"operation": "vm.start", "reason": "the VM is a snapshot"},
    ),
    (
        "PERMISSION_DENIED",
        [],
        5,
        "forbidden operation: vm.start",
        {"operation": "vm.start", "reason": "the pool account may not do this"},
    ),
    (
        "RBAC_PERMISSION_DENIED",
        ["VM.start", "no role"],
        5,
        "forbidden operation: vm.start",
        {"operation": "vm.start", "reason": "the pool account may not do this"},
    ),
    (
        "HOST_NOT_DISABLED",
        [],
        25,
        "incorrect state",
        {"actual": True, "expected": False, "object": "vm-id", "property": "enabled"},
    ),
    (
        "HOST_DISABLED",
        ["OpaqueRef:host"],
        25,
        "incorrect state",
        {"actual": False, "expected": True, "object": "host-id", "property": "enabled"},
    ),
    (
        "OTHER_OPERATION_IN_PROGRESS",
        ["VM", "OpaqueRef:vm", "clone", "OpaqueRef:task"],
        25,
        "incorrect state",
        {
            "actual": {"task-id": "clone"},
            "expected": {},
            "object": "vm-id",
            "property": "current_operations",
        },
    ),
    (
        "DEVICE_ALREADY_ATTACHED",
        ["OpaqueRef:vm"],
        25,
        "incorrect state",
        {"actual": True, "expected": False, "object": "vm-id", "property": "attached"},
    ),
    (
        "DEVICE_ALREADY_DETACHED",
        ["OpaqueRef:vm"],
        25,
        "incorrect state",
        {"actual": False, "expected": True, "object": "vm-id", "property": "attached"},
    ),
    (
        "HOST_IS_LIVE",
        ["OpaqueRef:host"],
        25,
        "incorrect state",
        {"actual": "Running", "expected": "Halted", "object": "host-id", "property": "power_state"},
    ),
    (
        "MESSAGE_METHOD_UNKNOWN",
        ["VM.migrate_send"],
        0,
        "not implemented by this pool: MESSAGE_METHOD_UNKNOWN",
        {"code": "MESSAGE_METHOD_UNKNOWN", "method": "VM.migrate_send"},
    ),
    (
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        ["VM.start", "3", "2"],
        0,
        "not implemented by this pool: MESSAGE_PARAMETER_COUNT_MISMATCH",
        {"code": "MESSAGE_PARAMETER_COUNT_MISMATCH", "method": "VM.start"},
    ),
    (
        "MESSAGE_REMOVED",
        [],
        0,
        "not implemented by this pool: MESSAGE_REMOVED",
        {"code": "MESSAGE_REMOVED", "method": None},
    ),
    (
        "SESSION_INVALID",
        ["OpaqueRef:secret-session"],
        9,
        "server unreachable",
        {"objectId": "vm-id"},
    ),
    (
        "TASK_CANCELLED",
        ["OpaqueRef:task"],
        21,
        "operation cancelled (task.cancel)",
        {"objectId": "vm-id", "code": "TASK_CANCELLED", "task": "task-id"},
    ),
    (
        "HOST_NOT_ENOUGH_FREE_MEMORY",
        ["4294967296", "1073741824"],
        21,
        "operation failed: HOST_NOT_ENOUGH_FREE_MEMORY",
        {
            "objectId": "vm-id",
            "code": "HOST_NOT_ENOUGH_FREE_MEMORY",
            "params": ["4294967296", "1073741824"],
        },
    ),
    (
        "VM_REQUIRES_SR",
        ["OpaqueRef:vm", "OpaqueRef:sr"],
        21,
        "operation failed: VM_REQUIRES_SR",
        {"objectId": "vm-id", "code": "VM_REQUIRES_SR", "params": ["vm-id", "OpaqueRef:sr"]},
    ),
    (
        "INTERNAL_ERROR",
        ["boom"],
        21,
        "operation failed: INTERNAL_ERROR",
        {"objectId": "vm-id", "code": "INTERNAL_ERROR", "params": ["boom"]},
    ),
]


@pytest.mark.parametrize(("code", "params", "xo_code", "message", "data"), MAPPINGS)
def test_xapi_error_table(
    code: str, params: list[str], xo_code: int, message: str, data: dict | None
) -> None:
    mapped = errors.xapi_to_xo(
        XapiError(code, params), IDS.get, object_id="vm-id", method="vm.start"
    ).to_json()
    expected = {"message": message, "code": xo_code}
    if data is not None:
        expected["data"] = data
    assert mapped == expected
    assert "secret-session" not in repr(mapped)


REFUSED_VALUES = [
    ("VLAN_TAG_INVALID", ["5000"], "/vlan", "5000 is not in 0-4094"),
    ("INVALID_IP_ADDRESS_SPECIFIED", ["IP"], "/IP", None),
    ("INVALID_VALUE", ["ha_restart_priority", "often"], "/ha_restart_priority", None),
    ("VALUE_NOT_SUPPORTED", ["VCPUs_max", "0", "too low"], "/VCPUs_max", "too low"),
    ("FIELD_TYPE_ERROR", ["memory_static_max"], "/memory_static_max", None),
    ("MAP_DUPLICATE_KEY", ["VM", "other_config", "OpaqueRef:vm", "k"], "/other_config", None),
]


@pytest.mark.parametrize(("code", "params", "path", "detail"), REFUSED_VALUES)
def test_refused_values_are_invalid_parameters(
    code: str, params: list[str], path: str, detail: str | None
) -> None:
    mapped = errors.xapi_to_xo(XapiError(code, params), IDS.get, object_id="vm-id")
    assert (mapped.code, mapped.message) == (10, "invalid parameters")
    [entry] = mapped.data["errors"]
    assert (entry["instancePath"], entry["keyword"]) == (path, code)
    assert entry["message"].startswith(f"{code}: {path[1:]}")
    assert detail is None or detail in entry["message"]


def test_every_table_entry_is_tested() -> None:
    tested = {case[0] for case in MAPPINGS} | {case[0] for case in REFUSED_VALUES}
    assert set(errors.XAPI_ERROR_TO_XO_ERROR) <= tested
