"""Fault injection (crash, drop, latency, hang, promote) and bad input: each answered the way
xapi does, and the simulator keeps serving afterwards."""

from __future__ import annotations

import asyncio
import errno
import time
import xmlrpc.client
from typing import Any

import aiohttp
import orjson
import pytest

from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator, host_addresses


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


async def json_call(
    http: aiohttp.ClientSession, url: str, method: str, *params: Any, limit: float = 10.0
) -> dict[str, Any]:
    """The raw v2 response document of one call."""
    doc = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with http.post(
        url + "/jsonrpc", data=orjson.dumps(doc), timeout=aiohttp.ClientTimeout(total=limit)
    ) as response:
        assert response.status == 200
        return orjson.loads(await response.read())


async def login(http: aiohttp.ClientSession, sim: Simulator, url: str | None = None) -> str:
    answer = await json_call(
        http, url or sim.master_url, "session.login_with_password", "root", "password"
    )
    return answer["result"]


async def xml_call(http: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, Any]:
    async with http.post(url + "/", data=body) as response:
        raw = await response.read()
        if response.status != 200:
            return response.status, raw
        (result,), _ = xmlrpc.client.loads(raw)
        return response.status, result


# -- crash and restart -------------------------------------------------------------------------


async def test_stop_host_refuses_connections_until_started(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    session = await login(http, sim)
    blocked = asyncio.create_task(
        json_call(http, sim.master_url, "event.from", session, ["vm"], "", 0.0)
    )
    token = (await blocked)["result"]["token"]
    # A long poll in progress when the host dies sees its connection reset.
    waiting = asyncio.create_task(
        json_call(http, sim.master_url, "event.from", session, ["vm"], token, 30.0)
    )
    await asyncio.sleep(0.2)
    await sim.stop_host(sim.pool.master)
    with pytest.raises(aiohttp.ClientError):
        await waiting
    with pytest.raises(aiohttp.ClientConnectorError):
        await json_call(http, sim.master_url, "VM.get_all", session)
    # The other hosts keep answering.
    slave = next(ref for ref in sim.pool.host_refs if ref != sim.pool.master)
    answer = await json_call(http, sim.url_of(slave), "session.login_with_password", "root", "x")
    assert answer["error"]["message"] == "HOST_IS_SLAVE"

    await sim.start_host(sim.pool.master)
    vms = await json_call(http, sim.master_url, "VM.get_all", session)
    assert set(vms["result"]) == set(sim.pool.records("VM"))  # the pool survived the crash


async def test_promote_moves_the_master(sim: Simulator, http: aiohttp.ClientSession) -> None:
    old_master = sim.pool.master
    new_master = next(ref for ref in sim.pool.host_refs if ref != old_master)
    sim.promote(new_master)
    assert sim.master_url == sim.url_of(new_master)
    answer = await json_call(http, sim.url_of(old_master), "session.login_with_password", "r", "p")
    assert answer["error"]["data"] == [sim.pool.address_of(new_master)]
    assert (await login(http, sim)).startswith("OpaqueRef:")


# -- dropped connections -----------------------------------------------------------------------


async def test_drop_connections_matching_a_method(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    session = await login(http, sim)
    sim.drop_connections(2, method="VM.get_all")
    assert (await json_call(http, sim.master_url, "host.get_all", session))["result"]
    for _ in range(2):
        with pytest.raises(aiohttp.ClientError):
            await json_call(http, sim.master_url, "VM.get_all", session)
    assert (await json_call(http, sim.master_url, "VM.get_all", session))["result"]


async def test_drop_any_connection_then_serve_others(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    session = await login(http, sim)
    sim.drop_connections(3)
    calls = [json_call(http, sim.master_url, "host.get_all", session) for _ in range(8)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    dropped = [r for r in results if isinstance(r, BaseException)]
    assert len(dropped) == 3 and all(isinstance(r, aiohttp.ClientError) for r in dropped)
    assert all(r["result"] for r in results if not isinstance(r, BaseException))


async def test_drop_after_the_call_ran_leaves_its_effect(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A master dying mid-call: the change is made, the answer never arrives."""
    session = await login(http, sim)
    vm = next(
        ref
        for ref, record in sim.pool.records("VM").items()
        if not record["is_a_template"] and not record["is_control_domain"]
    )
    sim.drop_connections(1, method="VM.set_name_label", after_call=True)
    with pytest.raises(aiohttp.ClientError):
        await json_call(http, sim.master_url, "VM.set_name_label", session, vm, "renamed")
    assert sim.pool.records("VM")[vm]["name_label"] == "renamed"
    answer = await json_call(http, sim.master_url, "VM.get_name_label", session, vm)
    assert answer["result"] == "renamed"


# -- latency and hangs ---------------------------------------------------------------------------


async def test_latency_global_and_per_host(sim: Simulator, http: aiohttp.ClientSession) -> None:
    slave = next(ref for ref in sim.pool.host_refs if ref != sim.pool.master)
    sim.set_latency(0.3)
    started = time.monotonic()
    session = await login(http, sim)
    assert time.monotonic() - started >= 0.3

    sim.set_latency(0.0)
    sim.set_latency(0.4, slave)
    started = time.monotonic()
    await json_call(http, sim.master_url, "host.get_all", session)
    assert time.monotonic() - started < 0.3
    started = time.monotonic()
    await json_call(http, sim.url_of(slave), "session.login_with_password", "root", "password")
    assert time.monotonic() - started >= 0.4


async def test_hang_times_out_clients_until_released(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    session = await login(http, sim)
    sim.hang(sim.pool.master)
    with pytest.raises(asyncio.TimeoutError):
        await json_call(http, sim.master_url, "host.get_all", session, limit=0.3)
    # A call waiting when the hang ends gets its answer.
    waiting = asyncio.create_task(json_call(http, sim.master_url, "host.get_all", session))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    sim.hang(sim.pool.master, False)
    assert set((await waiting)["result"]) == set(sim.pool.host_refs)


async def test_hung_host_can_be_stopped(sim: Simulator, http: aiohttp.ClientSession) -> None:
    session = await login(http, sim)
    sim.hang(sim.pool.master)
    waiting = asyncio.create_task(json_call(http, sim.master_url, "host.get_all", session))
    await asyncio.sleep(0.2)
    await sim.stop_host(sim.pool.master)
    with pytest.raises(aiohttp.ClientError):
        await waiting
    sim.hang(sim.pool.master, False)
    await sim.start_host(sim.pool.master)
    assert (await json_call(http, sim.master_url, "host.get_all", session))["result"]


# -- bad input -----------------------------------------------------------------------------------


async def test_xapi_errors_for_bad_calls(sim: Simulator, http: aiohttp.ClientSession) -> None:
    session = await login(http, sim)
    url = sim.master_url
    status, unknown = await xml_call(
        http, url, xmlrpc.client.dumps((session,), "VM.no_such").encode()
    )
    assert status == 200
    assert unknown == {
        "Status": "Failure",
        "ErrorDescription": ["MESSAGE_METHOD_UNKNOWN", "VM.no_such"],
    }

    _, count = await xml_call(http, url, xmlrpc.client.dumps((session, "x"), "VM.get_all").encode())
    assert count["ErrorDescription"] == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_all", "0", "1"]

    bad_ref = xmlrpc.client.dumps((session, "OpaqueRef:nope"), "VM.get_record").encode()
    _, handle = await xml_call(http, url, bad_ref)
    assert handle["ErrorDescription"] == ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]

    for garbage in (b"<methodCall><methodName>", b"\x00\xff not xml", b""):
        status, page = await xml_call(http, url, garbage)
        assert status == 500 and b"500" in page

    _, still = await xml_call(http, url, xmlrpc.client.dumps((session,), "host.get_all").encode())
    assert set(still["Value"]) == set(sim.pool.host_refs)


async def raw_exchange(host: str, port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


async def test_content_length_is_required(sim: Simulator, http: aiohttp.ClientSession) -> None:
    host = sim.pool.address_of(sim.pool.master)
    body = xmlrpc.client.dumps(("root", "password"), "session.login_with_password").encode()
    # Without Content-Length (or chunking) an HTTP/1.1 request has no body; bytes sent after
    # the headers would be a framing error, which aiohttp's parser rejects before us.
    no_length = (
        b"POST / HTTP/1.1\r\nHost: sim\r\nContent-Type: text/xml\r\nConnection: close\r\n\r\n"
    )
    answer = await raw_exchange(host, sim.port, no_length)
    assert answer.startswith(b"HTTP/1.1 500")

    chunked = (
        b"POST / HTTP/1.1\r\nHost: sim\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\n\r\n"
    )
    answer = await raw_exchange(host, sim.port, chunked)
    assert answer.startswith(b"HTTP/1.1 500")

    with_length = (
        b"POST /RPC2 HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    answer = await raw_exchange(host, sim.port, with_length)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"<value>Success</value>" in answer


async def test_oversized_body_is_refused(sim: Simulator, http: aiohttp.ClientSession) -> None:
    huge = xmlrpc.client.dumps(("root", "x" * 400_000), "session.login_with_password").encode()
    status, _page = await xml_call(http, sim.master_url, huge)
    assert status == 500  # xapi caps RPC bodies at 300 KiB
    assert (await login(http, sim)).startswith("OpaqueRef:")


# -- binding -------------------------------------------------------------------------------------


def test_host_addresses_follow_the_listen_address() -> None:
    assert host_addresses("127.0.0.1", 3) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert host_addresses("127.0.1.254", 3) == ["127.0.1.254", "127.0.1.255", "127.0.2.0"]
    assert host_addresses("localhost", 1) == ["localhost"]
    with pytest.raises(ValueError):
        host_addresses("localhost", 2)


async def test_hosts_share_one_port_on_distinct_addresses(make_sim: Any) -> None:
    sim = await make_sim(hosts=4)
    assert sim.urls == [f"http://127.0.0.{1 + i}:{sim.port}" for i in range(4)]
    assert sim.master_url == sim.urls[0]


async def test_taken_port_is_an_error_and_leaks_nothing(sim: Simulator) -> None:
    other = Simulator(SimConfig(hosts=2, vms=2, templates=2), port=sim.port)
    with pytest.raises(OSError) as error:
        await other.start()
    assert error.value.errno == errno.EADDRINUSE
    # Nothing of the failed simulator is left listening; the first one still serves.
    async with aiohttp.ClientSession() as http:
        assert (await login(http, sim)).startswith("OpaqueRef:")
