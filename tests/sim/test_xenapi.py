"""The official `XenAPI` package drives the simulator unchanged (XML-RPC over TCP and over the
Unix socket). Blocking client code runs in a worker thread; the simulator in the test's loop."""

from __future__ import annotations

import asyncio
import threading
import time
import xmlrpc.client
from typing import Any

import pytest
import XenAPI

from tests.conftest import SimFactory
from tests.sim.conftest import xenapi_login
from xod.sim.simulator import Simulator


def user_vms(session: XenAPI.Session) -> dict[str, dict[str, Any]]:
    return {
        ref: record
        for ref, record in session.xenapi.VM.get_all_records().items()
        if not record["is_a_template"]
        and not record["is_control_domain"]
        and not record["is_a_snapshot"]
    }


def parse_task_result(fragment: str) -> Any:
    """A task's `result` is an XML-RPC `<value>` fragment; parse it as Python users do."""
    document = f"<methodResponse><params><param>{fragment}</param></params></methodResponse>"
    (value,), _ = xmlrpc.client.loads(document)
    return value


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_login_reads_and_logout(sim: Simulator, suffix: str) -> None:
    def scenario() -> None:
        session = xenapi_login(sim.master_url + suffix, sim)
        api = session.xenapi
        (pool,) = api.pool.get_all()
        assert api.pool.get_master(pool) == sim.pool.master
        vms = api.VM.get_all()
        assert set(vms) == set(sim.pool.records("VM"))
        vm = next(iter(user_vms(session)))
        record = api.VM.get_record(vm)
        assert record["uuid"] == sim.pool.records("VM")[vm]["uuid"]
        assert vm in api.VM.get_by_name_label(record["name_label"])
        assert api.VM.get_by_uuid(record["uuid"]) == vm
        # XML-RPC carries int64 untyped, so XenAPI users see decimal strings.
        assert record["memory_static_max"] == str(sim.pool.records("VM")[vm]["memory_static_max"])
        session.xenapi.session.logout()
        assert session._session is None

    await asyncio.to_thread(scenario)


async def test_unix_socket_is_preauthenticated(make_sim: SimFactory, socket_dir: str) -> None:
    path = f"{socket_dir}/s.sock"
    sim = await make_sim(unix_path=path)

    def scenario() -> None:
        url = "http://" + path.replace("/", "_") + "/"
        session = XenAPI.Session(url, transport=XenAPI.UDSTransport())
        session.xenapi.login_with_password("anyone", "any password")
        assert set(session.xenapi.host.get_all()) == set(sim.pool.host_refs)
        session.xenapi.session.logout()

    await asyncio.to_thread(scenario)


async def test_vm_start_changes_power_state(sim: Simulator) -> None:
    def scenario() -> None:
        session = xenapi_login(sim.master_url, sim)
        api = session.xenapi
        halted = [ref for ref, r in user_vms(session).items() if r["power_state"] == "Halted"]
        assert halted, "the workload has halted VMs"
        vm = halted[0]
        api.VM.start(vm, False, False)
        assert api.VM.get_power_state(vm) == "Running"
        assert api.VM.get_resident_on(vm) in sim.pool.host_refs
        with pytest.raises(XenAPI.Failure) as failure:
            api.VM.start(vm, False, False)
        assert failure.value.details[0] == "VM_BAD_POWER_STATE"

    await asyncio.to_thread(scenario)


async def test_async_clone_progress_bar(make_sim: SimFactory) -> None:
    sim = await make_sim(op_durations={"VM.clone": 0.6})

    def scenario() -> None:
        session = xenapi_login(sim.master_url, sim)
        api = session.xenapi
        vm = next(ref for ref, r in user_vms(session).items() if r["power_state"] == "Halted")
        task = api.Async.VM.clone(vm, "progress-copy")
        progress_seen = []
        while api.task.get_status(task) == "pending":
            progress_seen.append(float(api.task.get_progress(task)))
            time.sleep(0.03)
        assert any(0.0 < p < 1.0 for p in progress_seen), progress_seen
        record = api.task.get_record(task)
        assert record["status"] == "success"
        assert record["name_label"] == "Async.VM.clone"
        assert float(record["progress"]) == 1.0
        clone = parse_task_result(record["result"])
        assert api.VM.get_name_label(clone) == "progress-copy"
        api.task.destroy(task)
        with pytest.raises(XenAPI.Failure) as failure:
            api.task.get_record(task)
        assert failure.value.details[:2] == ["HANDLE_INVALID", "task"]

    await asyncio.to_thread(scenario)


async def test_permute_running_vms_with_pool_migrate(make_sim: SimFactory) -> None:
    sim = await make_sim(vms=12, op_durations={"VM.pool_migrate": 0.2})

    def scenario() -> None:
        session = xenapi_login(sim.master_url, sim)
        api = session.xenapi
        hosts = api.host.get_all()
        running = {ref: r for ref, r in user_vms(session).items() if r["power_state"] == "Running"}
        if len(running) < 2:
            for ref in [
                r for r, rec in user_vms(session).items() if rec["power_state"] == "Halted"
            ][:3]:
                api.VM.start(ref, False, False)
            running = {
                ref: r for ref, r in user_vms(session).items() if r["power_state"] == "Running"
            }
        assert len(running) >= 2
        targets = {
            vm: hosts[(hosts.index(record["resident_on"]) + 1) % len(hosts)]
            for vm, record in running.items()
        }
        tasks = {
            api.Async.VM.pool_migrate(vm, host, {"live": "true"}): vm
            for vm, host in targets.items()
        }
        pending = set(tasks)
        deadline = time.monotonic() + 20
        while pending and time.monotonic() < deadline:
            pending = {t for t in pending if api.task.get_status(t) == "pending"}
            time.sleep(0.05)
        assert not pending
        for task in tasks:
            record = api.task.get_record(task)
            assert record["status"] == "success", record["error_info"]
            api.task.destroy(task)
        for vm, host in targets.items():
            assert api.VM.get_resident_on(vm) == host

    await asyncio.to_thread(scenario)


class LegacyWatcher(threading.Thread):
    """event.register/event.next in a thread, as old XenAPI scripts do; on EVENTS_LOST it
    unregisters, re-registers and re-reads every VM."""

    def __init__(self, url: str, sim: Simulator) -> None:
        super().__init__(daemon=True)
        self.session = xenapi_login(url, sim)
        self.session.xenapi.event.register(["vm"])
        self.seen: list[tuple[str, str]] = []
        self.recoveries = 0
        self.names: dict[str, str] = {}
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        api = self.session.xenapi
        try:
            while not self.stopping.is_set():
                try:
                    events = api.event.next()
                except XenAPI.Failure as failure:
                    if failure.details[0] != "EVENTS_LOST":
                        raise
                    api.event.unregister(["vm"])
                    api.event.register(["vm"])
                    self.names = {r: v["name_label"] for r, v in api.VM.get_all_records().items()}
                    self.recoveries += 1
                    continue
                for event in events:
                    assert event["class"] == "vm"
                    self.seen.append((event["operation"], event["ref"]))
                    if event["operation"] != "del":
                        self.names[event["ref"]] = event["snapshot"]["name_label"]
        except BaseException as error:
            self.error = error


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


async def test_legacy_event_watcher_sees_changes_and_recovers(make_sim: SimFactory) -> None:
    # A queue that holds the first scenario's events but not the burst's, and a batching delay
    # long enough that the burst piles up between two event.next answers.
    sim = await make_sim(legacy_event_queue_limit=20, event_batch_delay=0.3)

    def scenario() -> None:
        watcher = LegacyWatcher(sim.master_url, sim)
        watcher.start()
        actor = xenapi_login(sim.master_url, sim)
        api = actor.xenapi
        source = next(ref for ref, r in user_vms(actor).items() if r["power_state"] == "Halted")
        clone = api.VM.clone(source, "watched")
        api.VM.set_name_label(clone, "watched-renamed")
        api.VM.destroy(clone)
        assert wait_until(lambda: ("del", clone) in watcher.seen), watcher.seen
        operations = [op for op, ref in watcher.seen if ref == clone]
        assert operations[0] == "add" and operations[-1] == "del"
        assert "mod" in operations or operations.count("add") == 1

        # Far more changes than the per-session queue holds, faster than event.next's batching.
        for index in range(100):
            api.VM.set_name_label(source, f"burst-{index}")
        assert wait_until(lambda: watcher.recoveries >= 1), "EVENTS_LOST was not raised"
        assert wait_until(lambda: watcher.names.get(source) == "burst-99")

        watcher.stopping.set()
        api.VM.set_name_label(source, "wake the watcher")
        watcher.join(5)
        assert not watcher.is_alive()
        assert watcher.error is None, watcher.error

    await asyncio.to_thread(scenario)


async def test_session_invalid_then_transparent_relogin(sim: Simulator) -> None:
    session = await asyncio.to_thread(xenapi_login, sim.master_url, sim)
    before = session._session
    sim.invalidate_sessions()

    def scenario() -> None:
        assert set(session.xenapi.host.get_all()) == set(sim.pool.host_refs)

    await asyncio.to_thread(scenario)
    assert session._session != before


async def test_slave_answers_host_is_slave_with_master_address(sim: Simulator) -> None:
    slave = next(ref for ref in sim.pool.host_refs if ref != sim.pool.master)

    def scenario() -> None:
        with pytest.raises(XenAPI.Failure) as failure:
            xenapi_login(sim.url_of(slave), sim)
        assert failure.value.details == ["HOST_IS_SLAVE", sim.pool.address_of(sim.pool.master)]
        # Following the redirection, as XenAPI users and XO do: same port, master's address.
        master_url = sim.url_of(slave).replace(sim.pool.address_of(slave), failure.value.details[1])
        session = xenapi_login(master_url, sim)
        assert session.xenapi.pool.get_master(session.xenapi.pool.get_all()[0]) == sim.pool.master

    await asyncio.to_thread(scenario)
