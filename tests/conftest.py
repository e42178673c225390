"""Fixtures every test package shares: simulated pools on loopback, stopped at teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator

SimFactory = Callable[..., Awaitable[Simulator]]


@pytest.fixture
def sim_defaults() -> dict[str, Any]:
    """The SimConfig of `make_sim` and `sim` unless a test says otherwise; a small pool keeps
    tests fast. A test package may override this fixture."""
    return {"hosts": 3, "vms": 8, "templates": 4, "seed": 7}


@pytest.fixture
async def make_sim(sim_defaults: dict[str, Any]) -> AsyncIterator[SimFactory]:
    """`await make_sim(vms=…, unix_path=…)`: a started simulator, stopped at teardown."""
    started: list[Simulator] = []

    async def make(*, unix_path: str | None = None, **config: Any) -> Simulator:
        sim = Simulator(SimConfig(**{**sim_defaults, **config}), unix_path=unix_path)
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.stop()


@pytest.fixture
async def sim(make_sim: SimFactory) -> Simulator:
    return await make_sim()
