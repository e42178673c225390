"""Which way a download from the pool master goes: a plain-HTTP master and its local unix
socket give a raw download (its body left on the socket for a splice); the bytes are the VDI's.
An HTTPS master's: tests/api/test_transfers_https_master.py; through the server's HTTP proxy:
tests/api/test_commands_detached.py."""

from __future__ import annotations

import pytest

from tests.sim.transfer_helpers import MiB, expected_raw, small_vdi
from xod.xapi import transfers
from xod.xapi.raw_download import RawDownload


async def read_whole(body: transfers.Body) -> bytes:
    try:
        return b"".join([chunk async for chunk in body.chunks()])
    finally:
        await body.close()


@pytest.mark.parametrize("route", ["unix socket", "plain HTTP"])
async def test_a_raw_download_holds_the_vdis_bytes(route, make_sim, connect_to, tmp_path):
    if route == "unix socket":
        path = str(tmp_path / "xapi.sock")
        sim = await make_sim(unix_path=path)
        connection = connect_to("http://localhost", "nobody", "nothing", unix_socket=path)
    else:
        sim = await make_sim()
        connection = connect_to(sim.master_url)
    await connection.connect()
    ref, _uuid = small_vdi(sim, 5 * MiB)
    body = await transfers.download(connection, "/export_raw_vdi/", {"vdi": ref, "format": "raw"})
    assert isinstance(body, RawDownload)
    assert await read_whole(body) == expected_raw(sim, ref)


async def test_a_refusal_names_the_status(sim, connect_to):
    connection = connect_to(sim.master_url)
    await connection.connect()
    with pytest.raises(transfers.TransferRefused) as refused:
        await transfers.download(connection, "/export_raw_vdi/", {"vdi": "OpaqueRef:nope"})
    assert refused.value.status >= 400 and refused.value.reason
