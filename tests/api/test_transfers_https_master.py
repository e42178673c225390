"""An export from a pool master reached over HTTPS: xod reads the body over TLS (no splice is
possible) and streams it to the client whole, or cut short when the master fails mid-way."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.api.harness import connect, running_xod
from tests.api.test_commands_support import wait_synced
from tests.rest.helpers import wait_for
from tests.sim.transfer_helpers import MiB, expected_raw, small_vdi
from tests.xapi.proxy import FrontProxy, make_self_signed_cert, server_context
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator


async def test_an_export_from_an_https_master(tmp_path: Path) -> None:
    tls = server_context(make_self_signed_cert(tmp_path))
    async with (
        Simulator(SimConfig(hosts=2, vms=8, templates=2, seed=7)) as sim,
        FrontProxy(sim.master_url, ssl_context=tls) as front,
        running_xod(tmp_path) as app,
        connect(app) as client,
    ):
        await client.sign_in()
        server_id = await client.call(
            "server.add",
            {"host": front.url, "username": "root", "password": "password",
             "allowUnauthorized": True},
        )  # fmt: skip
        await wait_synced(app, server_id)
        ref, uuid = small_vdi(sim, 9 * MiB, density=0.7)
        await wait_for(lambda: app.objects.get(uuid), "the new VDI in xod's cache")
        get = await client.call("vdi.exportContent", {"id": uuid, "format": "raw"})
        async with aiohttp.ClientSession() as http, http.get(app.url + get["$getFrom"]) as got:
            assert got.status == 200
            assert await got.read() == expected_raw(sim, ref)
        assert "/export_raw_vdi/" in front.requests  # the body came through the TLS front

        _ref, big = small_vdi(sim, 256 * MiB, density=1.0)
        await wait_for(lambda: app.objects.get(big), "the big VDI in xod's cache")
        get = await client.call("vdi.exportContent", {"id": big, "format": "raw"})
        async with aiohttp.ClientSession() as http, http.get(app.url + get["$getFrom"]) as got:
            await got.content.readexactly(MiB)
            (task,) = [
                r for r, t in sim.pool.records("task").items()
                if t["status"] == "pending" and "content of VDI" in t["name_label"]
            ]  # fmt: skip
            sim.pool.tasks.cancel(task, by="someone else")  # the export fails on the master
            with pytest.raises(aiohttp.ClientPayloadError):
                await got.read()
