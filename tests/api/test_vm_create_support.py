"""Shared set-up for the vm.create / vm.set / device tests: objects prepared on the simulated pool
through the official XenAPI package (an ISO, a template with a disk recipe), and cache waits.

(No tests here: helpers only.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.harness import RpcError
from tests.api.test_commands_support import Env
from tests.sim.conftest import xenapi_login

GiB = 2**30


async def act(env: Env, method: str, params: dict[str, Any]) -> Any:
    """An action, then a read on the same connection: what its user sees next (reads wait for
    the connection's own writes), so the store itself shows the effect afterwards."""
    result = await env.client.call(method, params)
    await env.objects({"type": "pool"})
    return result


async def error_of(env: Env, method: str, params: dict[str, Any]) -> RpcError:
    with pytest.raises(RpcError) as raised:
        await env.client.call(method, params)
    return raised.value


async def cache_shows(
    env: Env, what: str, condition: Callable[[], Any], timeout: float = 5.0
) -> None:
    """Wait (at most `timeout` s) until the cache satisfies `condition` — for changes the pool
    makes on its own (set-up through XenAPI, a background boot), never after a command."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"the cache did not show {what} within {timeout} s"
        await asyncio.sleep(0.01)


def cached(env: Env, object_id: str) -> dict[str, Any]:
    """The cache's object right now, read straight from the store (it must be there)."""
    obj = env.app.objects.get(object_id)
    assert obj is not None, f"{object_id} is not in the cache"
    return obj


def by_label(env: Env, object_type: str, label: str) -> dict[str, Any]:
    return next(
        obj
        for obj in env.app.objects.by_type(object_type).values()
        if obj.get("name_label") == label
    )


async def xenapi(env: Env, scenario: Callable[[Any], Any]) -> Any:
    """Run `scenario(session.xenapi)` against the simulated pool in a worker thread."""

    def run() -> Any:
        session = xenapi_login(env.sim.master_url, env.sim)
        try:
            return scenario(session.xenapi)
        finally:
            session.xenapi.session.logout()

    return await asyncio.to_thread(run)


async def make_iso(env: Env, label: str = "debian-12.iso") -> str:
    """An ISO in the pool's ISO library; its XO id once the cache has it."""

    def create(api: Any) -> str:
        (sr,) = api.SR.get_by_name_label("ISO library")
        vdi = api.VDI.create(
            {
                "name_label": label,
                "SR": sr,
                "virtual_size": str(GiB),
                "type": "user",
                "sharable": False,
                "read_only": True,
                "other_config": {},
            }
        )
        return str(api.VDI.get_uuid(vdi))

    iso_id: str = await xenapi(env, create)
    await cache_shows(env, "the ISO", lambda: env.app.objects.get(iso_id) is not None)
    return iso_id


async def template_with_disk(env: Env, size: int = 10 * GiB) -> dict[str, Any]:
    """A custom template with one bootable disk on the shared SR (what a template made from a
    VM has; the Go SDK calls it a disk template), as the cache shows it."""
    template = min(env.app.objects.by_type("VM-template").values(), key=lambda t: t["name_label"])
    sr = by_label(env, "SR", "NFS storage")

    def add(api: Any) -> None:
        vdi = api.VDI.create(
            {
                "name_label": "template disk",
                "SR": api.SR.get_by_uuid(sr["uuid"]),
                "virtual_size": str(size),
                "type": "system",
                "sharable": False,
                "read_only": False,
                "other_config": {},
            }
        )
        api.VBD.create(
            {
                "VM": api.VM.get_by_uuid(template["uuid"]),
                "VDI": vdi,
                "userdevice": "0",
                "bootable": True,
                "mode": "RW",
                "type": "Disk",
                "empty": False,
                "other_config": {},
                "qos_algorithm_type": "",
                "qos_algorithm_params": {},
            }
        )

    await xenapi(env, add)
    await cache_shows(env, "the template's disk", lambda: cached(env, template["id"])["$VBDs"])
    return cached(env, template["id"])


Devices = list[dict[str, Any]]


def vm_devices(env: Env, vm: dict[str, Any]) -> tuple[Devices, Devices]:
    """The VM's VBDs (by position) and VIFs (by device), as the cache has them now."""
    vbds = sorted((cached(env, i) for i in vm["$VBDs"]), key=lambda v: int(v["position"]))
    vifs = sorted((cached(env, i) for i in vm["VIFs"]), key=lambda v: int(v["device"]))
    return vbds, vifs
