"""PoolConnection against the simulator over loopback: sessions, dialects, the Unix socket,
following the master, failover, timeouts, status."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any, TypedDict

import aiohttp
import orjson
import pytest
from yarl import URL

from tests.xapi.conftest import slaves_of, user_vms
from xod.xapi.connection import with_host
from xod.xapi.errors import CallTimeout, TransportError, XapiError
from xod.xapi.rpc import is_idempotent


async def test_login_and_calls_over_jsonrpc(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    assert connection.status == "connected"
    assert connection.last_error is None
    assert connection.protocol_of() == "jsonrpc"
    assert connection.pool_ref in sim.pool.records("pool")
    assert set(await connection.call("VM.get_all")) == set(sim.pool.records("VM"))
    record = await connection.call("session.get_record", connection.session_ref)
    assert record["originator"] == "xod"
    # The connection learnt the pool's hosts by itself, for failover.
    assert sorted(connection.known_hosts) == sorted(
        sim.pool.address_of(ref) for ref in sim.pool.host_refs
    )
    # JSON-RPC gives numbers as numbers.
    vm = user_vms(sim, "Halted")[0]
    assert isinstance(await connection.call("VM.get_memory_static_max", vm), int)


async def test_forced_xmlrpc(sim, connect_to):
    connection = connect_to(sim.master_url, protocol="xmlrpc")
    await connection.connect()
    assert connection.protocol_of() == "xmlrpc"
    vm = user_vms(sim, "Halted")[0]
    record = await connection.call("VM.get_record", vm)
    assert record["uuid"] == sim.pool.records("VM")[vm]["uuid"]
    # xapi sends ints untyped in XML-RPC: they arrive as decimal strings.
    assert record["memory_static_max"] == str(sim.pool.records("VM")[vm]["memory_static_max"])
    assert record["is_a_template"] is False


async def test_bad_credentials_raise_at_once(sim, connect_to):
    connection = connect_to(sim.master_url, password="wrong")
    started = time.monotonic()
    with pytest.raises(XapiError) as failure:
        await connection.connect()
    assert failure.value.code == "SESSION_AUTHENTICATION_FAILED"
    assert time.monotonic() - started < 2
    assert connection.status == "disconnected"
    assert "wrong" not in (connection.last_error or "")


async def test_unix_socket_is_preauthenticated(make_sim, connect_to, tmp_path):
    path = str(tmp_path / "xapi.sock")
    sim = await make_sim(unix_path=path)
    connection = connect_to("http://localhost", "nobody", "nothing", unix_socket=path)
    await connection.connect()
    assert connection.status == "connected"
    assert set(await connection.call("host.get_all")) == set(sim.pool.host_refs)


async def test_session_invalid_relogs_in_transparently(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    first_session = connection.session_ref
    sim.invalidate_sessions()
    assert set(await connection.call("VM.get_all")) == set(sim.pool.records("VM"))
    assert connection.session_ref != first_session
    assert connection.status == "connected"


async def test_slave_url_leads_to_the_master(sim, connect_to):
    connection = connect_to(sim.url_of(slaves_of(sim)[0]))
    await connection.connect()
    assert connection.master_url == sim.master_url
    assert set(await connection.call("host.get_all")) == set(sim.pool.host_refs)


async def test_call_follows_a_master_change(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    new_master = slaves_of(sim)[0]
    # A planned master change: the old master still answers, as a slave.
    sim.promote(new_master)
    assert set(await connection.call("VM.get_all")) == set(sim.pool.records("VM"))
    assert connection.master_url == sim.url_of(new_master)


async def test_master_crash_fails_over_to_the_new_master(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    old_master, new_master = sim.pool.master, slaves_of(sim)[0]
    statuses = []
    connection.on_status.append(lambda c: statuses.append(c.status))
    await sim.stop_host(old_master)
    sim.promote(new_master)
    # A read-only call is retried after failover.
    assert set(await connection.call("host.get_all")) == set(sim.pool.host_refs)
    assert connection.master_url == sim.url_of(new_master)
    assert connection.status == "connected"
    assert statuses == ["connecting", "connected"]


async def test_connect_fails_over_using_known_hosts(sim, connect_to):
    old_master, new_master = sim.pool.master, slaves_of(sim)[-1]
    await sim.stop_host(old_master)
    sim.promote(new_master)
    connection = connect_to(sim.url_of(old_master), backoff_initial=0.05)
    connection.set_known_hosts(sim.pool.address_of(ref) for ref in sim.pool.host_refs)
    await connection.connect(timeout=5)
    assert connection.master_url == sim.url_of(new_master)


async def test_non_idempotent_call_is_not_retried_after_a_transport_failure(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    vm = user_vms(sim, "Halted")[0]
    before = sim.pool.records("VM")[vm]["name_label"]
    sim.drop_connections(1, "VM.set_name_label")
    with pytest.raises(TransportError) as failure:
        await connection.call("VM.set_name_label", vm, "renamed")
    assert "VM.set_name_label" in str(failure.value)
    assert "renamed" not in str(failure.value)  # parameters never reach messages
    assert failure.value.sent  # it may have reached the host: the caller must not resend it
    assert sim.pool.records("VM")[vm]["name_label"] == before
    # The connection itself is fine and the next call goes through.
    await connection.call("VM.set_name_label", vm, "renamed")
    assert sim.pool.records("VM")[vm]["name_label"] == "renamed"


async def test_refused_non_idempotent_call_fails_over_and_runs_once(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    vm = user_vms(sim, "Halted")[0]
    old_master, new_master = sim.pool.master, slaves_of(sim)[0]
    await sim.stop_host(old_master)
    sim.promote(new_master)
    # Refused by the dead master: it cannot have run, so the connection sends it to the new one.
    await connection.call("VM.set_name_label", vm, "after failover")
    assert sim.pool.records("VM")[vm]["name_label"] == "after failover"
    assert connection.master_url == sim.url_of(new_master)


async def test_a_failed_login_leaves_the_call_unsent(sim, connect_to):
    connection = connect_to(sim.master_url, backoff_initial=0.05)
    await connection.connect()
    for host_ref in sim.pool.host_refs:
        await sim.stop_host(host_ref)
    vm = user_vms(sim, "Halted")[0]
    with pytest.raises(TransportError) as failure:
        await connection.call("VM.set_name_label", vm, "never")
    assert not failure.value.sent
    await connection.close()
    with pytest.raises(TransportError) as failure:
        await connection.call("VM.set_name_label", vm, "never")
    assert not failure.value.sent


async def test_read_only_call_survives_a_dropped_connection(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    session = connection.session_ref
    sim.drop_connections(1, "VM.get_all")
    assert set(await connection.call("VM.get_all")) == set(sim.pool.records("VM"))
    # A blip on a live master keeps the session (no failover, no new login).
    assert connection.session_ref == session
    assert connection.master_url == sim.master_url


async def test_nothing_answers_disconnected_with_backoff_then_recovers(sim, connect_to):
    connection = connect_to(sim.master_url, backoff_initial=0.1, backoff_max=1.0)
    await connection.connect()
    connecting_at = []

    def record(c):
        if c.status == "connecting":
            connecting_at.append(time.monotonic())

    connection.on_status.append(record)
    for ref in sim.pool.host_refs:
        await sim.stop_host(ref)
    with pytest.raises(TransportError):
        await connection.call("VM.get_all")
    assert connection.status == "disconnected"
    assert "no host of the pool answers" in connection.last_error
    connecting_at.clear()
    with pytest.raises(TransportError):
        await connection.connect(timeout=1.2)
    assert connection.status == "disconnected"
    gaps = [b - a for a, b in itertools.pairwise(connecting_at)]
    assert len(gaps) >= 2
    assert gaps[0] >= 0.07  # 0.1 s with ±25 % jitter
    assert gaps[1] > gaps[0]  # doubling
    for ref in sim.pool.host_refs:
        await sim.start_host(ref)
    await connection.connect(timeout=5)
    assert connection.status == "connected"
    assert connection.last_error is None
    assert set(await connection.call("host.get_all")) == set(sim.pool.host_refs)


async def test_hanging_master_times_out_then_fails_over(sim, connect_to):
    connection = connect_to(sim.master_url, call_timeout=0.5)
    await connection.connect()
    old_master, new_master = sim.pool.master, slaves_of(sim)[0]
    sim.hang(old_master)
    vm = user_vms(sim, "Halted")[0]
    started = time.monotonic()
    with pytest.raises(CallTimeout):
        await connection.call("VM.set_name_label", vm, "x")
    assert time.monotonic() - started < 3
    sim.promote(new_master)
    assert set(await connection.call("host.get_all")) == set(sim.pool.host_refs)
    assert connection.master_url == sim.url_of(new_master)


async def test_close_logs_out(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    session = connection.session_ref
    await connection.close()
    assert connection.status == "disconnected"
    assert connection.session_ref is None
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            sim.master_url + "/jsonrpc",
            data=orjson.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "pool.get_all", "params": [session]}
            ),
            headers={"Content-Type": "application/json"},
        ) as answer,
    ):
        reply = orjson.loads(await answer.read())
    assert reply["error"]["message"] == "SESSION_INVALID"
    with pytest.raises(TransportError):
        await connection.call("VM.get_all")


async def test_event_from_long_polls(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    batch = await connection.event_from(["vm"], "", 1.0)
    assert {event["ref"] for event in batch["events"]} == set(sim.pool.records("VM"))
    started = time.monotonic()
    quiet = await connection.event_from(["vm"], batch["token"], 0.3)
    assert quiet["events"] == []
    assert 0.25 <= time.monotonic() - started < 2
    assert quiet["valid_ref_counts"]["vm"] == len(sim.pool.records("VM"))


async def test_concurrent_session_invalid_is_one_relogin(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    logins = []
    connection.on_status.append(lambda c: logins.append(c.session_ref))
    sim.invalidate_sessions()
    results = await asyncio.gather(*(connection.call("host.get_all") for _ in range(10)))
    assert all(set(result) == set(sim.pool.host_refs) for result in results)
    # connecting -> connected once: one new session for all ten calls.
    assert len(logins) == 2


def test_idempotent_methods():
    assert is_idempotent("VM.get_all_records")
    assert is_idempotent("event.from")
    assert is_idempotent("session.login_with_password")
    assert not is_idempotent("VM.start")
    assert not is_idempotent("Async.VM.get_record")
    assert not is_idempotent("VM.set_name_label")


@pytest.mark.parametrize("protocol", ["jsonrpc", "xmlrpc"])
async def test_list_methods_takes_no_session(sim, connect_to, protocol):
    connection = connect_to(sim.master_url, protocol=protocol)
    await connection.connect()
    methods = await connection.call("system.listMethods")
    assert "VM.get_all_records" in methods
    assert "session.login_with_password" in methods


async def test_blocked_event_from_survives_a_master_crash(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    token = (await connection.event_from(["vm"], "", 0.1))["token"]
    old_master, new_master = sim.pool.master, slaves_of(sim)[0]
    polling = asyncio.create_task(connection.event_from(["vm"], token, 1.0))
    await asyncio.sleep(0.2)
    await sim.stop_host(old_master)
    sim.promote(new_master)
    batch = await asyncio.wait_for(polling, 10)
    assert "token" in batch
    assert connection.master_url == sim.url_of(new_master)


def test_master_address_keeps_scheme_and_port():
    assert str(with_host(URL("https://10.0.0.1:8443/"), "10.0.0.2")) == "https://10.0.0.2:8443/"
    assert str(with_host(URL("https://10.0.0.1/"), "fe80::1")) == "https://[fe80::1]/"
    assert str(with_host(URL("http://h:8080/"), "[::1]")) == "http://[::1]:8080/"


class _VmNames(TypedDict, total=False):
    name_label: Any
    power_state: Any


@pytest.mark.parametrize("protocol", ["jsonrpc", "xmlrpc"])
async def test_typed_results_and_event_snapshots(sim, connect_to, protocol):
    connection = connect_to(sim.master_url, protocol=protocol)
    await connection.connect()
    records = await connection.call("VM.get_all_records", result_type=dict[str, _VmNames])
    expected = sim.pool.records("VM")
    assert records.keys() == expected.keys()
    ref = next(iter(records))
    assert records[ref]["name_label"] == expected[ref]["name_label"]
    # JSON-RPC decodes just the listed fields; XML-RPC has no typed path: whole records.
    typed_keys = {"name_label", "power_state"}
    assert (set(records[ref]) == typed_keys) == (protocol == "jsonrpc")

    token = await connection.call("event.inject", "pool", connection.pool_ref)
    await connection.call("VM.set_name_label", ref, "typed-rename")
    reply = await connection.event_from(["vm"], token, 5.0, snapshot_types={"vm": _VmNames})
    snapshots = [e["snapshot"] for e in reply["events"] if e["ref"] == ref]
    assert snapshots and snapshots[-1]["name_label"] == "typed-rename"
    assert (set(snapshots[-1]) == typed_keys) == (protocol == "jsonrpc")
    assert reply["token"] and reply["valid_ref_counts"]["vm"] == len(expected)
