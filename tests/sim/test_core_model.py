"""Implicit messages, where-expressions, sessions and dispatch errors of the simulator core."""

from __future__ import annotations

import asyncio
import time

from tests.sim.core_helpers import failure, login, small_pool, vms
from xod.sim.pool import SimConfig, SimPool
from xod.sim.schema import CLASSES
from xod.sim.values import NULL_REF


async def test_every_record_of_a_class_has_the_full_field_set() -> None:
    pool = small_pool()
    session = await login(pool)
    for cls in (
        "pool",
        "host",
        "host_metrics",
        "VM",
        "VM_metrics",
        "VM_guest_metrics",
        "SR",
        "PBD",
        "VDI",
        "VBD",
        "VIF",
        "network",
        "PIF",
        "console",
    ):
        records = await pool.call(f"{cls}.get_all_records", [session], host=pool.master)
        assert records, cls
        for record in records.values():
            assert set(record) == set(CLASSES[cls].fields), cls
    pool_records = pool.records("pool")
    assert len(pool_records) == 1
    hosts = pool.records("host")
    for host_ref, host in hosts.items():
        dom0 = pool.records("VM")[host["control_domain"]]
        assert dom0["is_control_domain"] and dom0["domid"] == 0
        assert dom0["resident_on"] == host_ref and dom0["power_state"] == "Running"
    templates = [vm for vm in pool.records("VM").values() if vm["is_a_template"]]
    assert any(vm["is_default_template"] for vm in templates)
    assert [h["address"] for h in hosts.values()] == ["127.0.0.1", "127.0.0.2"]


async def test_getters_setters_maps_sets() -> None:
    pool = small_pool()
    s = await login(pool)
    call = pool.call
    m = pool.master
    vm = vms(pool, "Halted")[0]
    assert await call("VM.get_power_state", [s, vm], host=m) == "Halted"
    assert await call("VM_get_power_state", [s, vm], host=m) == "Halted"  # Class_message alias
    assert await call("VM.set_name_label", [s, vm, "renamed"], host=m) == ""
    assert (await call("VM.get_record", [s, vm], host=m))["name_label"] == "renamed"
    assert vm in await call("VM.get_by_name_label", [s, "renamed"], host=m)
    uuid = pool.records("VM")[vm]["uuid"]
    assert await call("VM.get_by_uuid", [s, uuid], host=m) == vm
    assert await failure(pool, "VM.get_by_uuid", [s, "nope"]) == ["UUID_INVALID", "VM", "nope"]
    assert await failure(pool, "VM.get_record", [s, "OpaqueRef:x"]) == [
        "HANDLE_INVALID",
        "VM",
        "OpaqueRef:x",
    ]
    await call("VM.add_to_other_config", [s, vm, "k", "v"], host=m)
    assert await failure(pool, "VM.add_to_other_config", [s, vm, "k", "w"]) == [
        "MAP_DUPLICATE_KEY",
        "VM",
        "other_config",
        vm,
        "k",
    ]
    await call("VM.remove_from_other_config", [s, vm, "k"], host=m)
    await call("VM.remove_from_other_config", [s, vm, "k"], host=m)  # missing key: no-op
    assert "k" not in pool.records("VM")[vm]["other_config"]
    await call("VM.add_tags", [s, vm, "a"], host=m)
    await call("VM.add_tags", [s, vm, "a"], host=m)
    assert pool.records("VM")[vm]["tags"] == ["a"]
    await call("VM.remove_tags", [s, vm, "a"], host=m)
    assert pool.records("VM")[vm]["tags"] == []
    # RO fields have no setter; bad types are INTERNAL_ERROR; enums are case-insensitive
    assert (await failure(pool, "VM.set_power_state", [s, vm, "Running"]))[0] == (
        "MESSAGE_METHOD_UNKNOWN"
    )
    assert (await failure(pool, "VM.set_is_a_template", [s, vm, "true"]))[0] == "INTERNAL_ERROR"
    await call("VM.set_actions_after_shutdown", [s, vm, "RESTART"], host=m)
    assert pool.records("VM")[vm]["actions_after_shutdown"] == "restart"
    await call("VM.set_user_version", [s, vm, "42"], host=m)  # int as a decimal string
    assert pool.records("VM")[vm]["user_version"] == 42


async def test_dispatch_errors_and_list_methods() -> None:
    pool = small_pool()
    s = await login(pool)
    assert await failure(pool, "VM.nope", [s]) == ["MESSAGE_METHOD_UNKNOWN", "VM.nope"]
    assert await failure(pool, "VM.nope", ["OpaqueRef:bad"]) == ["SESSION_INVALID", "OpaqueRef:bad"]
    vm = vms(pool, "Halted")[0]
    assert await failure(pool, "VM.start", [s, vm]) == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "VM.start",
        "3",
        "1",
    ]
    assert await failure(pool, "VM.snapshot", [s]) == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "VM.snapshot",
        "2",
        "0",
    ]
    assert await failure(pool, "Async.VM.get_name_label", [s, vm]) == [
        "Fault",
        "No async mode for this operation (rpc: VM.get_name_label)",
    ]
    assert await failure(pool, "Async.VM_clone", [s, vm, "x"]) == [
        "MESSAGE_METHOD_UNKNOWN",
        "Async.VM_clone",
    ]
    assert await failure(pool, "VM.start", [s, vm, "false", False]) == [
        "INTERNAL_ERROR",
        "Expected bool, got 'false'",
    ]
    names = await pool.call("system.listMethods", [], host=pool.master)
    assert "VM.get_all_records" in names and "event.from" in names
    assert "session.login_with_password" in names
    assert not any(name.startswith("Async.") for name in names)
    assert "session.get_all" not in names and "session.get_record" in names
    assert "message.get_since" in names and "VM.add_tags" in names
    assert await pool.call("system.isAlive", ["x"], host=pool.master) == "x"


async def test_get_all_records_where() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master

    async def where(expr: str, cls: str = "VM") -> set[str]:
        return set(await pool.call(f"{cls}.get_all_records_where", [s, expr], host=m))

    every = set(pool.records("VM"))
    assert await where("true") == every
    assert await where("false") == set()
    running = {r for r, v in pool.records("VM").items() if v["power_state"] == "Running"}
    templates = {r for r, v in pool.records("VM").items() if v["is_a_template"]}
    assert await where('field "power_state"="Running"') == running
    assert await where('not (field "power_state" = "Running")') == every - running
    assert await where('field "is_a_template"="true" or field "power_state"="Running"') == (
        templates | running
    )
    assert await where('field "is_a_template"="true" and field "power_state"="Running"') == set()
    vm = next(iter(running))
    label = pool.records("VM")[vm]["name_label"]
    assert await where(f'field "name__label"="{label}"') == {vm}
    memory = pool.records("VM")[vm]["memory_static_max"]
    assert vm in await where(f'field "memory__static_max"="{memory}"')
    assert set(
        await pool.call("network.get_all_where", [s, 'field "bridge"="xenbr0"'], host=m)
    ) == {r for r, n in pool.records("network").items() if n["bridge"] == "xenbr0"}
    assert (await failure(pool, "VM.get_all_records_where", [s, 'field "x" ==']))[0] == (
        "INVALID_VALUE"
    )


async def test_sessions() -> None:
    pool = small_pool()
    master = pool.master
    slave = next(h for h in pool.host_refs if h != master)
    assert await failure(pool, "session.login_with_password", ["root", "bad"]) == [
        "SESSION_AUTHENTICATION_FAILED",
        "root",
        "Authentication failure",
    ]
    assert await failure(pool, "session.login_with_password", ["root", "password"], host=slave) == [
        "HOST_IS_SLAVE",
        "127.0.0.1",
    ]
    # Unix socket logins always succeed, even on a member and with bad credentials.
    local = await pool.call("session.login_with_password", ["x", "y"], host=slave, local=True)
    assert await pool.call("pool.get_all", [local], host=slave, local=True)
    s = await login(pool)
    assert await failure(pool, "VM.get_all", [s], host=slave) == ["HOST_IS_SLAVE", "127.0.0.1"]
    record = await pool.call("session.get_record", [s, s], host=master)
    assert record["this_host"] == master
    assert await pool.call("session.get_this_host", [s, s], host=master) == master
    assert await failure(pool, "session.get_all", [s]) == [
        "MESSAGE_METHOD_UNKNOWN",
        "session.get_all",
    ]
    # login with 2, 3 and 4 params
    await pool.call("session.login_with_password", ["root", "password", "1.0"], host=master)
    assert await failure(pool, "session.login_with_password", ["root"]) == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "session.login_with_password",
        "2",
        "1",
    ]
    assert await pool.call("session.logout", [s], host=master) == ""
    assert await failure(pool, "VM.get_all", [s]) == ["SESSION_INVALID", s]
    # master moves: the old master now answers HOST_IS_SLAVE with the new address
    pool.designate_new_master(slave)
    assert await failure(
        pool, "session.login_with_password", ["root", "password"], host=master
    ) == ["HOST_IS_SLAVE", "127.0.0.2"]
    assert await pool.call("session.login_with_password", ["root", "password"], host=slave)


async def test_session_cap_drops_least_recently_active() -> None:
    pool = small_pool(max_sessions_per_originator=3)
    first, second, third = [await login(pool, "xo") for _ in range(3)]
    other = await login(pool, "cli")
    await pool.call("pool.get_all", [first], host=pool.master)  # first is now the most recent
    fourth = await login(pool, "xo")
    assert await failure(pool, "pool.get_all", [second]) == ["SESSION_INVALID", second]
    for session in (first, third, fourth, other):
        assert await pool.call("pool.get_all", [session], host=pool.master)


async def test_logout_wakes_blocked_event_from() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master
    token = (await pool.call("event.from", [s, ["vm"], "", 1.0], host=m))["token"]
    waiting = asyncio.ensure_future(pool.call("event.from", [s, ["vm"], token, 30.0], host=m))
    await asyncio.sleep(0.05)
    other = await login(pool)
    await pool.call("session.logout", [s], host=m)
    try:
        await asyncio.wait_for(waiting, 2)
    except Exception as error:  # the XapiFailure
        assert getattr(error, "description", None) == ["SESSION_INVALID", s]
    else:
        raise AssertionError("event.from returned after logout")
    pool.invalidate_sessions()
    assert await failure(pool, "VM.get_all", [other]) == ["SESSION_INVALID", other]


async def test_messages_class() -> None:
    pool = small_pool()
    s = await login(pool)
    m = pool.master
    vm = vms(pool, "Running")[0]
    uuid = pool.records("VM")[vm]["uuid"]
    ref = await pool.call("message.create", [s, "VM_STARTED", 3, "vm", uuid, "body"], host=m)
    records = await pool.call("message.get_all_records", [s], host=m)
    assert records[ref]["cls"] == "VM" and records[ref]["obj_uuid"] == uuid
    assert ref in await pool.call("message.get_since", [s, "19700101T00:00:00Z"], host=m)
    events = await pool.call("event.from", [s, ["message"], "", 1.0], host=m)
    assert [(e["operation"], e["ref"], e["id"]) for e in events["events"]] == [("add", ref, "0")]
    await pool.call("message.destroy", [s, ref], host=m)
    assert await pool.call("message.get_all", [s], host=m) == []


async def test_build_10k_vm_pool_time() -> None:
    started = time.perf_counter()
    pool = SimPool(SimConfig(vms=10_000, seed=1))
    elapsed = time.perf_counter() - started
    counts = pool.db.counts()
    print(f"\n10k-VM pool built in {elapsed:.2f} s: {counts}")
    s = await login(pool)
    started = time.perf_counter()
    total = 0
    for cls in ("VM", "VM_metrics", "VM_guest_metrics", "VBD", "VDI", "VIF", "host", "SR"):
        total += len(await pool.call(f"{cls}.get_all_records", [s], host=pool.master))
    print(f"get_all_records of {total} records in {time.perf_counter() - started:.4f} s")
    users = [
        v
        for v in pool.records("VM").values()
        if not v["is_a_template"] and not v["is_control_domain"]
    ]
    assert len(users) == 10_000
    assert all(v["metrics"] != NULL_REF for v in users)
