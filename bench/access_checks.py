"""Permission checks (xod/api/access.py, xod/acl/resolver.py) on a simulated pool's real objects:
what a non-admin's grants cost to compute, and what one object check costs through the
inheritance rule. Prints its figures as JSON.

    PYTHONPATH=. .venv/bin/python bench/access_checks.py [--vms 5000] [--acls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api.harness import connect, running_xod
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator


def per_call_us(run: Any, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        run()
    return (time.perf_counter() - started) / repeat * 1e6


async def main(vms: int, acls: int) -> dict[str, Any]:
    config = SimConfig(hosts=10, vms=vms, templates=10, seed=1)
    async with Simulator(config) as sim, running_xod(Path(tempfile.mkdtemp())) as app:
        async with connect(app) as admin:
            await admin.sign_in()
            server_id = await admin.call(
                "server.add", {"host": sim.master_url, "username": "root", "password": "password"}
            )
            async with asyncio.timeout(600):
                await app.pools.sync_of(server_id).wait_synced()
        objects = app.objects
        access = app.services.access
        store = app.services.store
        host_id = min(objects.by_type("host"))
        (pool_id,) = objects.by_type("pool")
        vm_ids = sorted(objects.by_type("VM"))

        viewer = store.users.create("host-viewer@bench", None, "user")
        store.acls.add(viewer.id, host_id, "viewer")
        pool_viewer = store.users.create("pool-viewer@bench", None, "user")
        store.acls.add(pool_viewer.id, pool_id, "viewer")
        many = store.users.create("many-acls@bench", None, "user")
        group = store.groups.create("bench")
        store.groups.add_user(group.id, many.id)
        for index, vm_id in enumerate(vm_ids[:acls]):
            store.acls.add(many.id if index % 2 else group.id, vm_id, "operator")

        crowd = [store.users.create(f"member-{i}@bench", None, "user") for i in range(1000)]
        crowd_group = store.groups.create("crowd")
        store.groups.set_users(crowd_group.id, [member.id for member in crowd])
        crowd = [store.users.get(member.id) or member for member in crowd]
        for vm_id in vm_ids[:20]:
            store.acls.add(crowd_group.id, vm_id, "operator")

        def regrant_crowd() -> float:
            """An ACL added on the group: every member's view, computed again."""
            store.acls.add(crowd_group.id, host_id, "viewer")
            access.changed([member.id for member in crowd], subjects=[crowd_group.id])
            started = time.perf_counter()
            for member in crowd:
                access.view_of(member)
            elapsed = time.perf_counter() - started
            store.acls.remove(crowd_group.id, host_id, "viewer")
            return elapsed * 1e3

        for member in crowd:
            access.view_of(member)

        def grants_uncached() -> None:
            access.changed([many.id])
            access.grants_of(many)

        every_id = list(objects.objects)

        def scan(user: Any) -> int:
            view = access.view_of(user)
            assert view is not None
            return sum(view.visible(object_id, objects.get) for object_id in every_id)

        def scan_us(user: Any) -> float:
            started = time.perf_counter()
            scan(user)
            return (time.perf_counter() - started) / len(every_id) * 1e6

        vbd_id = next(iter(objects.by_type("VBD")))
        return {
            "objects": len(every_id),
            "acls_of_the_many_acls_user": acls,
            "grants_of_uncached_us": round(per_call_us(grants_uncached, 200), 1),
            "grants_of_cached_us": round(per_call_us(lambda: access.grants_of(many), 20000), 2),
            "visible_per_object_us": {
                "view_on_one_host": round(scan_us(viewer), 2),
                "view_on_the_pool": round(scan_us(pool_viewer), 2),
                f"{acls}_vm_acls": round(scan_us(many), 2),
            },
            "visible_objects": {
                "view_on_one_host": scan(viewer),
                "view_on_the_pool": scan(pool_viewer),
                f"{acls}_vm_acls": scan(many),
            },
            "views_of_1000_group_members_after_a_group_acl_ms": round(regrant_crowd(), 1),
            "can_operate_vbd_us": round(
                per_call_us(lambda: access.can(pool_viewer, vbd_id, "operate"), 20000), 2
            ),
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=5000)
    parser.add_argument("--acls", type=int, default=200)
    arguments = parser.parse_args()
    print(orjson.dumps(asyncio.run(main(arguments.vms, arguments.acls))).decode())
