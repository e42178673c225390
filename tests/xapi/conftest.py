"""Fixtures: a small simulated pool on loopback, and PoolConnections to it closed at teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from xod.sim.simulator import Simulator
from xod.xapi.connection import PoolConnection


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    return {"hosts": 3, "vms": 6, "templates": 2, "seed": 11}


@pytest.fixture
async def connect_to() -> AsyncIterator[Callable[..., PoolConnection]]:
    """`connect_to(url, **options)`: a PoolConnection with the simulator's credentials
    (not yet connected), closed at teardown."""
    made: list[PoolConnection] = []

    def make(url: str, username: str = "root", password: str = "password", **options: Any):
        connection = PoolConnection(url, username, password, **options)
        made.append(connection)
        return connection

    yield make
    for connection in made:
        await connection.close()


def slaves_of(sim: Simulator) -> list[str]:
    return [ref for ref in sim.pool.host_refs if ref != sim.pool.master]


def user_vms(sim: Simulator, power_state: str) -> list[str]:
    return [
        ref
        for ref, record in sim.pool.records("VM").items()
        if record["power_state"] == power_state
        and not record["is_a_template"]
        and not record["is_control_domain"]
        and not record["is_a_snapshot"]
    ]
