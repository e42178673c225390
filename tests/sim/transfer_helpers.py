"""Simulated disks small enough for transfer tests (set up through the simulator's own data)."""

from __future__ import annotations

import os

from xod.sim.simulator import Simulator

MiB = 1024 * 1024


def small_vdi(sim: Simulator, size: int = 6 * MiB, density: float = 0.5) -> tuple[str, str]:
    """A new VDI of `size` bytes on the default SR (ref, uuid), half its chunks non-zero."""
    pool = sim.pool
    sim.pool.disks.density = density
    sr = pool.db.get("pool", pool.pool_ref)["default_SR"]
    ref = next(r for r, v in pool.records("VDI").items() if v["SR"] == sr)
    record = dict(pool.records("VDI")[ref])
    new = pool.db.insert("VDI", {**record, "uuid": os.urandom(16).hex(), "VBDs": []})
    pool.db.update("VDI", new, {"virtual_size": size})
    return new, pool.records("VDI")[new]["uuid"]


def small_halted_vm(sim: Simulator) -> str:
    """A halted VM whose disks are shrunk to a few MiB, so that exports stay quick."""
    return small_vm(sim, "Halted")


def small_vm(sim: Simulator, power_state: str) -> str:
    """A VM in `power_state` whose disks are shrunk to a few MiB, so that exports stay quick."""
    pool = sim.pool
    for ref, vm in pool.records("VM").items():
        if vm["power_state"] == power_state and not vm["is_a_template"] and vm["VBDs"]:
            disks = [pool.records("VBD")[vbd]["VDI"] for vbd in vm["VBDs"]]
            if all(d in pool.records("VDI") for d in disks):
                for size, vdi in enumerate(disks, start=3):
                    pool.db.update("VDI", vdi, {"virtual_size": size * MiB + 4096})
                return ref
    raise AssertionError(f"the workload has no {power_state} VM with disks")


def expected_raw(sim: Simulator, vdi: str) -> bytes:
    """The VDI's content as the simulator holds it."""
    disks = sim.pool.disks
    return b"".join(disks.read(vdi, i) for i in range(-(-disks.size_of(vdi) // MiB)))
