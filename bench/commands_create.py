"""100 `vm.create` with cloud-init (a disk template, one more disk, one interface, a config
drive), 10 at a time, on a simulated 1k-VM pool: through xod (each answered once the cache shows
the VM, its disks and interfaces) against the same XAPI calls made straight to the simulator
with the official `XenAPI` client, 10 threads. Prints JSON: median and p99 per creation both
ways, the wall time of the creations (xod's start and first sync excluded), and the ratio of
the medians.

    PYTHONPATH=. .venv/bin/python bench/commands_create.py [--creates 100] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import XenAPI

from bench.commands_sim import simulator_process
from tests.api.harness import connect, running_xod

POOL = {"hosts": 3, "vms": 1000, "templates": 10, "seed": 1}
GiB = 2**30
CLOUD_CONFIG = "#cloud-config\nhostname: bench\npackages:\n  - nginx\n"
DISK = {"type": "user", "sharable": False, "read_only": False, "other_config": {}}


def _login(url: str) -> XenAPI.Session:
    session = XenAPI.Session(url)
    session.xenapi.login_with_password("root", "password", "1.0", "bench")
    return session


def _vbd(vm: str, vdi: str, position: str, bootable: bool) -> dict[str, Any]:
    return {
        "VM": vm,
        "VDI": vdi,
        "userdevice": position,
        "bootable": bootable,
        "mode": "RW",
        "type": "Disk",
        "empty": False,
        "unpluggable": False,
        "other_config": {},
        "qos_algorithm_type": "",
        "qos_algorithm_params": {},
    }


def prepare(url: str) -> tuple[str, str, str]:
    """A template with a 10 GiB disk (what cloud-init needs beside it); its uuid, the SR's and
    the first network's."""
    session = _login(url)
    api = session.xenapi
    try:
        template = next(
            ref
            for ref, r in api.VM.get_all_records().items()
            if r["is_a_template"] and not r["is_a_snapshot"]
        )
        (sr,) = api.SR.get_by_name_label("NFS storage")
        disk = api.VDI.create(
            {**DISK, "name_label": "template disk", "SR": sr, "virtual_size": str(10 * GiB)}
        )
        api.VBD.create(_vbd(template, disk, "0", True))
        network = api.network.get_all()[0]
        return api.VM.get_uuid(template), api.SR.get_uuid(sr), api.network.get_uuid(network)
    finally:
        api.session.logout()


def direct_create(api: Any, template: str, sr: str, network: str, name: str) -> None:
    """The XAPI calls xod makes for one vm.create, made straight with XenAPI."""
    vm = api.VM.clone(template, name)
    api.VM.remove_from_other_config(vm, "disks")
    api.VM.provision(vm)
    uuid = api.VM.get_uuid(vm)
    api.VM.add_to_other_config(vm, f"xo:{uuid[:8]}", '{"creation":{}}')
    api.VM.set_memory_limits(vm, str(GiB // 2), str(2 * GiB), str(2 * GiB), str(2 * GiB))
    data = api.VDI.create({**DISK, "name_label": "data", "SR": sr, "virtual_size": str(4 * GiB)})
    api.VBD.create(_vbd(vm, data, api.VM.get_allowed_VBD_devices(vm)[0], False))
    api.VIF.create(
        {
            "device": api.VM.get_allowed_VIF_devices(vm)[0],
            "network": network,
            "VM": vm,
            "MAC": "",
            "MTU": "1500",
            "other_config": {},
            "qos_algorithm_type": "",
            "qos_algorithm_params": {},
        }
    )
    drive = api.VDI.create(
        {**DISK, "name_label": "XO CloudConfigDrive", "SR": sr, "virtual_size": str(10 * 2**20)}
    )
    api.VBD.create(_vbd(vm, drive, api.VM.get_allowed_VBD_devices(vm)[0], False))


def direct(url: str, ids: tuple[str, str, str], creates: int, concurrency: int) -> list[float]:
    """`creates` creations on `concurrency` threads, each with its own XenAPI session."""
    local = threading.local()
    sessions: list[XenAPI.Session] = []
    first = _login(url)
    template = first.xenapi.VM.get_by_uuid(ids[0])
    sr = first.xenapi.SR.get_by_uuid(ids[1])
    network = first.xenapi.network.get_by_uuid(ids[2])
    sessions.append(first)

    def one(index: int) -> float:
        if not hasattr(local, "api"):
            session = _login(url)
            sessions.append(session)
            local.api = session.xenapi
        started = time.perf_counter()
        direct_create(local.api, template, sr, network, f"direct-{index}")
        return time.perf_counter() - started

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(one, range(creates)))
    finally:
        for session in sessions:
            session.xenapi.session.logout()


async def through_xod(
    url: str, ids: tuple[str, str, str], creates: int, concurrency: int
) -> list[float]:
    with tempfile.TemporaryDirectory() as state_dir:
        async with running_xod(Path(state_dir)) as app, connect(app) as admin:
            await admin.sign_in()
            server_id = await admin.call(
                "server.add", {"host": url, "username": "root", "password": "password"}
            )
            await app.pools.sync_of(server_id).wait_synced()
            _, sr, network = ids
            # Default templates' XO ids are "<pool id>-<uuid>": found by uuid.
            template = next(
                t["id"] for t in app.objects.by_type("VM-template").values() if t["uuid"] == ids[0]
            )
            timings: list[float] = []
            queue = iter(range(creates))

            async def worker() -> None:
                async with connect(app) as client:
                    await client.sign_in()
                    for index in queue:
                        started = time.perf_counter()
                        vm_id = await client.call(
                            "vm.create",
                            {
                                "template": template,
                                "name_label": f"xod-{index}",
                                "memoryMax": 2 * GiB,
                                "VDIs": [{"SR": sr, "size": 4 * GiB, "name_label": "data"}],
                                "VIFs": [{"network": network}],
                                "cloudConfig": CLOUD_CONFIG,
                            },
                        )
                        timings.append(time.perf_counter() - started)
                        assert len((app.objects.get(vm_id) or {})["$VBDs"]) == 3

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            timings.append(time.perf_counter() - started)  # the last entry: the whole phase
            return timings


def summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 1),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--creates", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    with simulator_process(**POOL) as url:
        ids = prepare(url)
        started = time.perf_counter()
        xenapi_timings = direct(url, ids, args.creates, args.concurrency)
        direct_wall = time.perf_counter() - started
        *xod_timings, xod_wall = asyncio.run(through_xod(url, ids, args.creates, args.concurrency))
    direct_summary, xod_summary = summary(xenapi_timings), summary(xod_timings)
    print(
        orjson.dumps(
            {
                "benchmark": "vm.create with cloud-init, concurrent",
                "pool_vms": POOL["vms"],
                "creates": args.creates,
                "concurrency": args.concurrency,
                "direct_xenapi": {**direct_summary, "wall_s": round(direct_wall, 2)},
                "through_xod": {**xod_summary, "wall_s": round(xod_wall, 2)},
                "ratio_p50": round(xod_summary["p50_ms"] / direct_summary["p50_ms"], 2),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
