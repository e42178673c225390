"""JSON-RPC (v1 and v2) and the XML-RPC wire shape, over real HTTP with an aiohttp client."""

from __future__ import annotations

import asyncio
import re
import time
import xmlrpc.client
from typing import Any

import aiohttp
import orjson
import pytest

from xod.sim.simulator import Simulator


class JsonRpc:
    """A minimal JSON-RPC client that keeps the raw response for envelope checks."""

    def __init__(self, http: aiohttp.ClientSession, url: str, version: int = 2) -> None:
        self.http = http
        self.url = url + "/jsonrpc"
        self.version = version
        self.next_id = 1

    async def raw(self, method: str, params: list[Any], request_id: Any = None) -> dict[str, Any]:
        request_id = self.next_id if request_id is None else request_id
        self.next_id += 1
        doc: dict[str, Any] = {"method": method, "params": params, "id": request_id}
        if self.version == 2:
            doc["jsonrpc"] = "2.0"
        async with self.http.post(self.url, data=orjson.dumps(doc)) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/json"
            body = orjson.loads(await response.read())
        assert body["id"] == request_id
        return body

    async def call(self, method: str, *params: Any) -> Any:
        body = await self.raw(method, list(params))
        error = body.get("error")
        if error:
            raise RuntimeError(error)
        return body["result"]


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


async def login(rpc: JsonRpc, sim: Simulator) -> str:
    return await rpc.call(
        "session.login_with_password", sim.pool.config.username, sim.pool.config.password
    )


async def test_v1_envelopes_and_headers(sim: Simulator, http: aiohttp.ClientSession) -> None:
    rpc = JsonRpc(http, sim.master_url, version=1)
    ok = await rpc.raw("session.login_with_password", ["root", "password"], request_id=7)
    assert set(ok) == {"result", "error", "id"}
    assert ok["error"] is None and ok["id"] == 7
    assert ok["result"].startswith("OpaqueRef:")
    bad = await rpc.raw("session.login_with_password", ["root", "wrong"], request_id="x")
    assert bad["result"] is None and bad["id"] == "x"
    assert bad["error"][0] == "SESSION_AUTHENTICATION_FAILED"
    assert all(isinstance(item, str) for item in bad["error"])
    async with http.post(
        rpc.url, data=orjson.dumps({"method": "VM.get_all", "params": [ok["result"]], "id": 1})
    ) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Cache-Control"] == "no-cache, no-store"


async def test_v2_envelopes(sim: Simulator, http: aiohttp.ClientSession) -> None:
    rpc = JsonRpc(http, sim.master_url)
    ok = await rpc.raw("session.login_with_password", ["root", "password"], request_id=0)
    assert set(ok) == {"jsonrpc", "result", "id"}  # no `error` key on success
    session = ok["result"]
    vms = await rpc.call("VM.get_all", session)
    assert vms and all(ref.startswith("OpaqueRef:") for ref in vms)
    bad = await rpc.raw("VM.get_record", [session, "OpaqueRef:nope"])
    assert "result" not in bad
    assert bad["error"] == {
        "code": 1,
        "message": "HANDLE_INVALID",
        "data": ["VM", "OpaqueRef:nope"],
    }
    dead = await rpc.raw("VM.get_all", ["OpaqueRef:dead"])
    assert dead["error"]["message"] == "SESSION_INVALID"
    assert dead["error"]["data"] == ["OpaqueRef:dead"]


async def test_results_unwrapped_with_native_numbers(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    rpc = JsonRpc(http, sim.master_url)
    session = await login(rpc, sim)
    methods = await rpc.call("system.listMethods")
    assert "VM.get_all_records" in methods and "session.login_with_password" in methods
    assert not any(name.startswith("Async.") for name in methods)
    records = await rpc.call("VM.get_all_records", session)
    assert records.keys() == sim.pool.records("VM").keys()
    vm = next(r for r in records.values() if not r["is_a_template"] and not r["is_control_domain"])
    assert isinstance(vm["memory_static_max"], int)  # JSON carries int64 as a number
    assert re.fullmatch(r"\d{8}T\d\d:\d\d:\d\dZ", vm["snapshot_time"])


async def test_sessions_shared_between_transports(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    rpc = JsonRpc(http, sim.master_url)
    session = await login(rpc, sim)
    body = xmlrpc.client.dumps((session,), "pool.get_all").encode()
    async with http.post(sim.master_url + "/", data=body) as response:
        (result,), _ = xmlrpc.client.loads(await response.read())
    assert result["Status"] == "Success"
    assert result["Value"] == await rpc.call("pool.get_all", session)


async def test_event_from_coalesces_and_times_out(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    rpc = JsonRpc(http, sim.master_url)
    watcher = await login(rpc, sim)
    actor = await login(rpc, sim)
    full = await rpc.call("event.from", watcher, ["vm"], "", 5.0)
    adds = {e["ref"] for e in full["events"] if e["operation"] == "add"}
    assert adds == set(sim.pool.records("VM"))
    assert full["valid_ref_counts"]["vm"] == len(adds)
    assert "task" in full["valid_ref_counts"]
    token = full["token"]

    vm = next(iter(sorted(adds)))
    await rpc.call("VM.set_name_label", actor, vm, "first")
    await rpc.call("VM.set_name_label", actor, vm, "second")
    batch = await rpc.call("event.from", watcher, ["vm"], token, 5.0)
    for_vm = [e for e in batch["events"] if e["ref"] == vm]
    assert len(for_vm) == 1  # two changes, one event per object per batch
    assert for_vm[0]["operation"] == "mod" and for_vm[0]["class"] == "vm"
    assert for_vm[0]["snapshot"]["name_label"] == "second"
    assert batch["token"] > token

    started = time.monotonic()
    quiet = await rpc.call("event.from", watcher, ["vm"], batch["token"], 0.3)
    waited = time.monotonic() - started
    assert quiet["events"] == []
    assert 0.25 <= waited < 3.0
    assert quiet["token"] >= batch["token"]


async def test_event_from_bad_token(sim: Simulator, http: aiohttp.ClientSession) -> None:
    rpc = JsonRpc(http, sim.master_url)
    session = await login(rpc, sim)
    body = await rpc.raw("event.from", [session, ["vm"], "not-a-token", 1.0])
    assert body["error"]["message"] == "EVENT_FROM_TOKEN_PARSE_FAILURE"
    assert body["error"]["data"] == ["not-a-token"]


async def test_json_request_errors_are_http_500(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    url = sim.master_url + "/jsonrpc"
    for payload in (b"{garbage", b'{"method":"session.login_with_password","params":[]}'):
        async with http.post(url, data=payload) as response:
            assert response.status == 500
            assert response.headers["Content-Type"].startswith("text/html")
    # The simulator keeps serving afterwards.
    rpc = JsonRpc(http, sim.master_url, version=1)
    assert (await login(rpc, sim)).startswith("OpaqueRef:")


async def test_concurrent_calls_on_keep_alive_connections(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    rpc = JsonRpc(http, sim.master_url)
    session = await login(rpc, sim)
    results = await asyncio.gather(*(rpc.call("VM.get_all", session) for _ in range(20)))
    assert all(sorted(r) == sorted(results[0]) for r in results)


# -- XML-RPC wire shape, seen raw ------------------------------------------------------------


async def xml_call(
    http: aiohttp.ClientSession, url: str, method: str, *params: Any, path: str = "/RPC2"
) -> str:
    body = xmlrpc.client.dumps(params, method, allow_none=True).encode()
    async with http.post(url + path, data=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/xml"
        return (await response.read()).decode()


async def test_xmlrpc_wire_shape(sim: Simulator, http: aiohttp.ClientSession) -> None:
    text = await xml_call(http, sim.master_url, "session.login_with_password", "root", "password")
    assert text.startswith('<?xml version="1.0"?><methodResponse>')
    (login_result,), _ = xmlrpc.client.loads(text.encode())
    session = login_result["Value"]

    records = await xml_call(http, sim.master_url, "VM.get_all_records", session)
    assert "\n" not in records and "> <" not in records
    assert "<i8>" not in records and "<string>" not in records and "<nil/>" not in records
    assert "<fault>" not in records
    # int64 fields go out untyped; booleans typed; datetimes typed.
    assert re.search(r"<name>memory_static_max</name><value>\d+</value>", records)
    assert "<name>is_a_template</name><value><boolean>" in records
    assert re.search(
        r"<name>snapshot_time</name><value><dateTime.iso8601>\d{8}T\d\d:\d\d:\d\dZ<", records
    )

    events = await xml_call(http, sim.master_url, "event.from", session, ["vm"], "", 1.0)
    assert re.search(r"<name>vm</name><value><i4>\d+</i4></value>", events)
    assert "<i4>" not in events.split("valid_ref_counts")[0]  # i4 only inside valid_ref_counts

    # XO's XML-RPC transport posts to /xmlrpc: any non-JSON path is XML-RPC.
    listed = await xml_call(http, sim.master_url, "system.listMethods", path="/xmlrpc")
    (names,), _ = xmlrpc.client.loads(listed.encode())
    assert isinstance(names, list) and "VM.get_all" in names  # bare array, no envelope


async def test_jsonrpc_over_unix_socket_is_local(make_sim: Any, socket_dir: str) -> None:
    path = f"{socket_dir}/s.sock"
    sim = await make_sim(unix_path=path)
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as http:
        rpc = JsonRpc(http, "http://localhost")
        # Pre-authenticated: any credentials open a session, on the master.
        session = await rpc.call("session.login_with_password", "nobody", "nothing")
        assert set(await rpc.call("host.get_all", session)) == set(sim.pool.host_refs)
        sim.promote(next(ref for ref in sim.pool.host_refs if ref != sim.pool.master))
        # The socket follows the master: still no HOST_IS_SLAVE after a promotion.
        assert (await rpc.call("session.login_with_password", "x", "y")).startswith("OpaqueRef:")
