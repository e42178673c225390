"""vm.stats, host.stats, sr.stats: a host's `/rrd_updates`, in Xen Orchestra's result shape.

As xo-server does: the host's time (`host.get_servertime`) fixes the window (`points` rows of
`step` seconds ending now), `/rrd_updates` is read from the host that holds the RRDs (a VM's
resident host) and kept per host and step until its next row is due, so one fetch serves every
VM of the host and every poller. Concurrent requests for the same answer share one fetch.
Mapping to XO's paths and units: xod/api/xo_stats.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from xod.api import errors, xo_stats
from xod.api.context import CallContext
from xod.api.jobs import commands_of
from xod.api.registry import Registry
from xod.api.resolve import find_object, object_method
from xod.api.services import Services
from xod.cache.objects.values import to_timestamp
from xod.cache.sync import PoolSync
from xod.xapi.errors import TransportError, XapiError
from xod.xapi.http import get_resource
from xod.xapi.rrd import RrdFormatError, RrdUpdates, parse_rrd_updates

VM_TYPES = ("VM", "VM-snapshot")
# Per-request deadline of a `/rrd_updates` read.
RRD_TIMEOUT = 30.0


@dataclass
class _Entry:
    fetch: asyncio.Future[RrdUpdates]
    expires: float = 0.0  # monotonic; 0 while the fetch runs


@dataclass
class RrdCache:
    """`/rrd_updates` answers by (pool connection, host uuid, step), until their next row."""

    entries: dict[tuple[int, str, int], _Entry] = field(default_factory=dict)

    async def get(self, sync: PoolSync, host: dict[str, Any], step: int, points: int) -> RrdUpdates:
        key = (id(sync.connection), host["uuid"], step)
        entry = self.entries.get(key)
        now = time.monotonic()
        if entry is not None and (entry.expires == 0.0 or entry.expires > now):
            return await asyncio.shield(entry.fetch)
        self._trim(now)
        entry = _Entry(asyncio.ensure_future(_fetch(sync, host, step, points)))
        self.entries[key] = entry
        try:
            updates = await asyncio.shield(entry.fetch)
        except BaseException:
            if self.entries.get(key) is entry:
                del self.entries[key]
            raise
        # Kept until the host's next row is due: between a second and a step whatever the
        # skew between the host's clock and ours.
        due = updates.end + step - time.time()
        entry.expires = time.monotonic() + min(float(step), max(1.0, due))
        return updates

    def _trim(self, now: float) -> None:
        for key in [k for k, e in self.entries.items() if 0.0 < e.expires <= now]:
            del self.entries[key]


async def _fetch(sync: PoolSync, host: dict[str, Any], step: int, points: int) -> RrdUpdates:
    connection = sync.connection
    server_time = to_timestamp(await connection.call("host.get_servertime", host["_xapiRef"]))
    now = server_time if server_time is not None else int(time.time())
    query = {
        "cf": "AVERAGE",
        "host": "true",
        "interval": str(step),
        "json": "true",
        "start": str(now - step * points + step),
    }
    body = await get_resource(
        connection, "/rrd_updates", query, address=host["address"] or None, timeout=RRD_TIMEOUT
    )
    updates = parse_rrd_updates(body)
    del body
    if updates.step != step:
        raise xo_stats.faulty_granularity(f"Unable to get the true granularity: {updates.step}")
    return updates


def _sync_of(services: Services, obj: dict[str, Any]) -> PoolSync:
    server_id = commands_of(services).server_of_pool(obj.get("$pool"))
    if server_id is None:
        raise errors.server_unreachable(obj["id"])
    return services.pools.sync_of(server_id)


async def host_rrd(
    ctx: CallContext, host: dict[str, Any], granularity: str | None
) -> tuple[RrdUpdates, int]:
    step, points = xo_stats.step_of(granularity)
    cache = ctx.services.state(RrdCache, RrdCache)
    sync = _sync_of(ctx.services, host)
    try:
        return await cache.get(sync, host, step, points), step
    except XapiError as error:
        raise errors.xapi_to_xo(error, sync.id_of, object_id=host["id"]) from None
    except TransportError as error:
        raise errors.unknown_error(f"cannot read the host's stats: {error}") from None
    except RrdFormatError as error:
        raise errors.unknown_error(str(error)) from None


def stats_of(
    updates: RrdUpdates, step: int, kind: str, uuid: str, rules: tuple[xo_stats.Rule, ...]
) -> dict[str, Any]:
    if not updates.timestamps:
        return xo_stats.result(int(time.time()), step, {})
    return xo_stats.result(updates.end, step, xo_stats.map_sources(updates.of(kind, uuid), rules))


async def host_stats(ctx: CallContext, host_id: str, granularity: str | None) -> dict[str, Any]:
    host = find_object(ctx.services.objects, host_id, ("host",))
    updates, step = await host_rrd(ctx, host, granularity)
    return stats_of(updates, step, "host", host["uuid"], xo_stats.HOST_RULES)


def register(registry: Registry) -> None:
    @object_method(registry, "vm.stats", resolve=[("id", VM_TYPES, "view")])
    async def vm_stats(ctx: CallContext, params: dict[str, Any]) -> Any:
        vm = find_object(ctx.services.objects, params["id"], VM_TYPES)
        xo_stats.step_of(params.get("granularity"))  # a bad one fails before anything else
        running = vm["power_state"] == "Running"
        host = ctx.services.objects.get(vm["$container"]) if running else None
        if host is None or host.get("type") != "host":
            raise errors.incorrect_state(None, vm["$container"], vm["id"], "resident_on")
        updates, step = await host_rrd(ctx, host, params.get("granularity"))
        return stats_of(updates, step, "vm", vm["uuid"], xo_stats.VM_RULES)

    @object_method(registry, "host.stats", resolve=[("host", "host", "view")])
    async def host_stats_method(ctx: CallContext, params: dict[str, Any]) -> Any:
        return await host_stats(ctx, params["host"], params.get("granularity"))

    @object_method(registry, "sr.stats", resolve=[("id", "SR", "view")])
    async def sr_stats(ctx: CallContext, params: dict[str, Any]) -> Any:
        sr = find_object(ctx.services.objects, params["id"], ("SR",))
        xo_stats.step_of(params.get("granularity"))
        objects = ctx.services.objects
        host_ids = []
        for pbd_id in sr["$PBDs"]:
            pbd = objects.get(pbd_id)
            if pbd is not None and pbd["host"] is not None and pbd["host"] not in host_ids:
                host_ids.append(pbd["host"])
        hosts = await asyncio.gather(
            *(host_stats(ctx, host_id, params.get("granularity")) for host_id in host_ids)
        )
        names = [
            str((objects.get(host_id) or {}).get("name_label", host_id)) for host_id in host_ids
        ]
        return xo_stats.sr_stats(sr["uuid"], list(zip(names, hosts, strict=True)))
