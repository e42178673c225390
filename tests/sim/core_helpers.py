"""Shared helpers of the sim-core tests: a small pool and a whole-DB reverse-reference check."""

from __future__ import annotations

from typing import Any

import pytest

from xod.sim.errors import XapiFailure
from xod.sim.pool import SimConfig, SimPool
from xod.sim.schema import RELATIONS
from xod.sim.values import NULL_REF


def small_pool(**overrides: Any) -> SimPool:
    options: dict[str, Any] = {
        "hosts": 2,
        "vms": 12,
        "templates": 4,
        "seed": 7,
        "event_batch_delay": 0.01,
    }
    options.update(overrides)
    return SimPool(SimConfig(**options))


async def login(pool: SimPool, originator: str = "") -> str:
    return await pool.call(
        "session.login_with_password", ["root", "password", "1.0", originator], host=pool.master
    )


async def failure(pool: SimPool, method: str, params: list[Any], **kw: Any) -> list[str]:
    with pytest.raises(XapiFailure) as info:
        await pool.call(method, params, host=kw.pop("host", pool.master), **kw)
    return info.value.description


def check_reverse_references(pool: SimPool) -> None:
    """Every relation holds both ways over the whole database."""
    tables = pool.db.tables
    for (cls, fld), (other, other_field) in RELATIONS.items():
        for ref, record in tables[cls].items():
            target = record[fld]
            if target != NULL_REF and target in tables[other]:
                assert ref in tables[other][target][other_field], (cls, ref, fld, target)
        for target, record in tables[other].items():
            for ref in record[other_field]:
                assert ref in tables[cls], (other, target, other_field, ref, "dangling")
                assert tables[cls][ref][fld] == target, (other, target, other_field, ref)
            assert len(set(record[other_field])) == len(record[other_field])


def vms(pool: SimPool, state: str) -> list[str]:
    return [
        ref
        for ref, vm in pool.records("VM").items()
        if vm["power_state"] == state
        and not vm["is_a_template"]
        and not vm["is_control_domain"]
        and not vm["current_operations"]
    ]
