"""The simulator's `/rrd_updates` (on every host's own address) and `host.get_data_sources`,
read as Xen Orchestra and XenAPI users read them: plain HTTP GETs and the official package."""

from __future__ import annotations

import asyncio
import base64
import itertools
import socket
import time
from typing import Any

import aiohttp
import orjson
import XenAPI

from tests.sim.conftest import xenapi_login
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator
from xod.sim.values import NULL_REF


async def login(sim: Simulator) -> str:
    session: str = await asyncio.to_thread(lambda: xenapi_login(sim.master_url, sim)._session)
    return session


async def get(url: str, **options: Any) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession() as http, http.get(url, **options) as response:
        return response.status, await response.read(), response.content_type


def rrd_url(sim: Simulator, host_ref: str, session: str | None, **query: Any) -> str:
    params = {"cf": "AVERAGE", "host": "true", "json": "true", "interval": 5}
    params.update(query)
    if session is not None:
        params["session_id"] = session
    return sim.url_of(host_ref) + "/rrd_updates?" + "&".join(f"{k}={v}" for k, v in params.items())


def running_vm_uuids(sim: Simulator, host_ref: str) -> set[str]:
    return {
        vm["uuid"]
        for vm in sim.pool.records("VM").values()
        if vm["resident_on"] == host_ref
        and vm["power_state"] == "Running"
        and not vm["is_control_domain"]
    }


async def test_each_host_serves_its_own_rrds(sim: Simulator) -> None:
    session = await login(sim)
    start = int(time.time()) - 5 * 120 + 5  # XO's window for "seconds"
    seen_vms: set[str] = set()
    for host_ref in sim.pool.host_refs:
        status, body, content_type = await get(rrd_url(sim, host_ref, session, start=start))
        assert (status, content_type) == (200, "application/json")
        answer = orjson.loads(body)
        meta = answer["meta"]
        # Every number is a JSON string, as current XAPI sends them.
        assert meta["step"] == "5" and 0 < int(meta["rows"]) <= 120
        assert int(meta["rows"]) == len(answer["data"]) and meta["end"] == answer["data"][0]["t"]
        times = [int(row["t"]) for row in answer["data"]]
        assert times == sorted(times, reverse=True)  # newest first
        assert all(t2 - t1 == -5 for t1, t2 in itertools.pairwise(times))
        legend = [entry.split(":") for entry in meta["legend"]]
        assert all(cf == "AVERAGE" for cf, *_ in legend)
        host_uuid = sim.pool.records("host")[host_ref]["uuid"]
        host_sources = {name for _cf, kind, uuid, name in legend if kind == "host"}
        assert {uuid for _cf, kind, uuid, _n in legend if kind == "host"} == {host_uuid}
        assert {"cpu0", "memory_total_kib", "memory_free_kib", "loadavg"} <= host_sources
        vms = {uuid for _cf, kind, uuid, _n in legend if kind == "vm"}
        # Only the VMs running on this host: halted ones have no RRD anywhere.
        assert vms == running_vm_uuids(sim, host_ref)
        seen_vms |= vms
        for row in answer["data"]:
            assert len(row["values"]) == int(meta["columns"]) == len(legend)
            assert all(isinstance(value, str) and float(value) >= 0 for value in row["values"])
    assert seen_vms, "the seeded pool runs VMs"


async def test_vm_sources_follow_its_devices(sim: Simulator) -> None:
    session = await login(sim)
    vms = sim.pool.records("VM")
    vm_ref, vm = next(
        (ref, vm)
        for ref, vm in vms.items()
        if vm["power_state"] == "Running" and not vm["is_control_domain"] and vm["VIFs"]
    )
    host_ref = vm["resident_on"]
    url = rrd_url(sim, host_ref, session, start=-60, host="false", vm_uuid=vm["uuid"])
    answer = orjson.loads((await get(url))[1])
    names = {entry.split(":")[3] for entry in answer["meta"]["legend"]}
    vcpus = int(sim.pool.records("VM_metrics")[vm["metrics"]]["VCPUs_number"])
    assert {f"cpu{n}" for n in range(vcpus)} <= names and f"cpu{vcpus}" not in names
    for vif in vm["VIFs"]:
        device = sim.pool.records("VIF")[vif]["device"]
        assert {f"vif_{device}_rx", f"vif_{device}_tx"} <= names
    assert {"memory", "memory_internal_free", "vbd_xvda_read", "vbd_xvda_write"} <= names
    assert all(entry.split(":")[1] == "vm" for entry in answer["meta"]["legend"])
    # Stopped, the VM has no RRD on the host any more.
    sim.pool.db.update("VM", vm_ref, {"power_state": "Halted", "resident_on": NULL_REF})
    assert orjson.loads((await get(url))[1])["meta"]["legend"] == []


async def test_granularity_picks_the_archive(sim: Simulator) -> None:
    session = await login(sim)
    now = int(time.time())
    for step, points in ((60, 120), (3600, 168), (86400, 366)):
        start = now - step * points + step  # XO's window
        url = rrd_url(sim, sim.pool.master, session, interval=step, start=start)
        meta = orjson.loads((await get(url))[1])["meta"]
        assert int(meta["step"]) == step and int(meta["rows"]) <= points


async def test_auth_start_and_xml(sim: Simulator) -> None:
    session = await login(sim)
    master = sim.pool.master
    status, _body, _type = await get(rrd_url(sim, master, None, start=-60))
    assert status == 401
    status, _body, _type = await get(rrd_url(sim, master, "OpaqueRef:bogus", start=-60))
    assert status == 401
    status, _body, _type = await get(rrd_url(sim, master, session))
    assert status == 400  # start is required
    credentials = base64.b64encode(b"root:password").decode()
    url = rrd_url(sim, master, None, start=-60, json="")
    url = url.replace("&json=", "")
    status, body, content_type = await get(url, headers={"Authorization": f"Basic {credentials}"})
    assert (status, content_type) == (200, "text/xml")
    assert body.startswith(b"<xport><meta><start>") and b"<legend><entry>AVERAGE:host:" in body
    # Session by cookie, as XAPI looks there first.
    status, _body, _type = await get(
        rrd_url(sim, master, None, start=-60), cookies={"session_id": session}
    )
    assert status == 200


async def test_host_get_data_sources_with_xenapi(sim: Simulator) -> None:
    def scenario() -> list[dict[str, Any]]:
        session: XenAPI.Session = xenapi_login(sim.master_url, sim)
        try:
            host = session.xenapi.pool.get_master(session.xenapi.pool.get_all()[0])
            sources: list[dict[str, Any]] = session.xenapi.host.get_data_sources(host)
            return sources
        finally:
            session.xenapi.session.logout()

    sources = await asyncio.to_thread(scenario)
    by_name = {source["name_label"]: source for source in sources}
    assert {"cpu0", "memory_total_kib", "memory_free_kib", "loadavg"} <= set(by_name)
    total = by_name["memory_total_kib"]
    assert total["enabled"] is True and total["units"] == "KiB" and total["value"] > 0
    assert 0 <= by_name["cpu0"]["value"] <= 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_every_host_also_on_a_plain_http_port() -> None:
    """`http_port` (80 for an unmodified Xen Orchestra, which reads a host's stats at
    `http://<host address>/rrd_updates`); a free port here, as 80 needs privileges."""
    port = free_port()
    async with Simulator(SimConfig(hosts=2, vms=4, templates=1, seed=3), http_port=port) as sim:
        session = await login(sim)
        for host_ref in sim.pool.host_refs:
            address = sim.pool.address_of(host_ref)
            url = (
                f"http://{address}:{port}/rrd_updates?host=true&json&start=-30&session_id={session}"
            )
            status, body, _type = await get(url)
            assert status == 200
            uuid = sim.pool.records("host")[host_ref]["uuid"]
            assert f"AVERAGE:host:{uuid}:cpu0" in orjson.loads(body)["meta"]["legend"]
        # The same host, RPC included: a pool added at that address works.
        master = f"http://{sim.pool.address_of(sim.pool.master)}:{port}"
        session_on_80 = await asyncio.to_thread(lambda: xenapi_login(master, sim))
        await asyncio.to_thread(session_on_80.xenapi.session.logout)
