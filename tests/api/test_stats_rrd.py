"""Reading `/rrd_updates`: the answers of older XAPI (unquoted keys, bare numbers), missing
values, XO's unit changes, and a body larger than allowed refused as it arrives."""

from __future__ import annotations

import math
import time

import pytest

from tests.conftest import SimFactory
from xod.api import xo_stats
from xod.xapi.connection import PoolConnection
from xod.xapi.errors import ProtocolError
from xod.xapi.http import get_resource
from xod.xapi.rrd import RrdFormatError, parse_rrd_updates

CURRENT = b"""{"meta":{"start":"100","step":"5","end":"105","rows":"2","columns":"3",
"legend":["AVERAGE:vm:u1:cpu0","AVERAGE:vm:u1:memory_internal_free","AVERAGE:host:h1:loadavg"]},
"data":[{"t":"105","values":["0.5","NaN","1.5"]},{"t":"100","values":["0.25","1024","1.0"]}]}"""
# XAPI before 23.31: unquoted keys, numbers as numbers, NaN bare.
OLD = b"""{meta: {start: 100, step: 5, end: 105, rows: 2, columns: 1,
legend: ["AVERAGE:vm:u1:cpu0"]}, data: [{t: 105, values: [NaN]}, {t: 100, values: [0.25]}]}"""


def test_rows_turned_oldest_first_nan_kept_as_missing() -> None:
    updates = parse_rrd_updates(CURRENT)
    assert (updates.step, updates.end, updates.timestamps) == (5, 105, [100, 105])
    vm = updates.of("vm", "u1")
    assert list(vm["cpu0"]) == [0.25, 0.5]
    assert math.isnan(vm["memory_internal_free"][1])
    stats = xo_stats.map_sources(vm, xo_stats.VM_RULES)
    assert stats == {"cpus": {"0": [25.0, 50.0]}, "memoryFree": [1024 * 1024, None]}
    host = xo_stats.map_sources(updates.of("host", "h1"), xo_stats.HOST_RULES)
    assert host == {"load": [1.0, 1.5]}


def test_older_xapi_answer_and_selection() -> None:
    updates = parse_rrd_updates(OLD, keep=lambda kind, uuid: kind == "vm")
    assert updates.of("vm", "u1")["cpu0"][0] == 0.25
    assert math.isnan(updates.of("vm", "u1")["cpu0"][1])
    assert parse_rrd_updates(CURRENT, keep=lambda kind, _uuid: kind == "vm").of("host", "h1") == {}


def test_not_an_rrd_answer() -> None:
    for body in (b"<html>502</html>", b'{"meta": {}}', b"[]"):
        with pytest.raises(RrdFormatError):
            parse_rrd_updates(body)


async def test_answer_over_the_limit_is_refused(make_sim: SimFactory) -> None:
    sim = await make_sim(hosts=1, vms=20)
    connection = PoolConnection(sim.master_url, "root", "password")
    try:
        await connection.connect()
        query = {"host": "true", "json": "true", "start": str(int(time.time()) - 600)}
        body = await get_resource(connection, "/rrd_updates", query)
        assert parse_rrd_updates(body).timestamps
        with pytest.raises(ProtocolError, match="bytes"):
            await get_resource(connection, "/rrd_updates", query, max_bytes=4096)
        # An answer that is not a 200 (no `start`: 400) is a ProtocolError too.
        with pytest.raises(ProtocolError, match="HTTP 400"):
            await get_resource(connection, "/rrd_updates", {"json": "true"})
    finally:
        await connection.close()
