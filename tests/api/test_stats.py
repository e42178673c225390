"""vm.stats, host.stats, sr.stats through xod, against the simulator's `/rrd_updates`: XO's
result shape, granularities, units, errors, and one fetch per host and step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.harness import RpcError
from tests.api.test_commands_support import Env, commands_env


async def error_of(env: Env, method: str, params: dict[str, Any]) -> RpcError:
    with pytest.raises(RpcError) as raised:
        await env.client.call(method, params)
    return raised.value


def series_lengths(tree: Any) -> set[int]:
    """The lengths of every value list in a stats tree."""
    if isinstance(tree, list):
        return {len(tree)}
    return set().union(*(series_lengths(child) for child in tree.values()))


async def running_vm(env: Env) -> dict[str, Any]:
    vms = await env.objects({"type": "VM", "power_state": "Running"})
    return next(vm for vm in vms.values() if vm["VIFs"])


async def test_vm_stats_in_xo_shape(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = await running_vm(env)
        result = await env.client.call("vm.stats", {"id": vm["id"]})
        assert set(result) == {"endTimestamp", "interval", "stats"}
        assert result["interval"] == 5 and isinstance(result["endTimestamp"], int)
        stats = result["stats"]
        # One column per vCPU, in percent; memory in bytes.
        assert set(stats["cpus"]) == {str(n) for n in range(vm["CPUs"]["number"])}
        assert all(0 <= v <= 100 for v in stats["cpus"]["0"])
        assert max(stats["memory"]) == vm["memory"]["size"]
        assert all(0 < v < vm["memory"]["size"] for v in stats["memoryFree"])
        vifs = await env.objects({"type": "VIF", "$VM": vm["id"]})
        devices = {vif["device"] for vif in vifs.values()}
        assert set(stats["vifs"]["rx"]) == set(stats["vifs"]["tx"]) == devices
        assert set(stats["xvds"]) == {"r", "w"} and "a" in stats["xvds"]["r"]
        assert stats["vbdLatency"]["r"]["a"][0] < 10  # µs → ms
        # Every series covers the same window: at most 120 points of 5 s.
        (length,) = series_lengths(stats)
        assert 100 <= length <= 120

        minutes = await env.client.call("vm.stats", {"id": vm["id"], "granularity": "minutes"})
        assert minutes["interval"] == 60 and minutes["endTimestamp"] % 60 == 0


async def test_host_stats_in_xo_shape(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        host = next(iter((await env.objects({"type": "host"})).values()))
        result = await env.client.call("host.stats", {"host": host["id"], "granularity": "hours"})
        assert result["interval"] == 3600
        stats = result["stats"]
        assert set(stats["cpus"]) == {str(n) for n in range(int(host["CPUs"]["cpu_count"]))}
        # KiB → bytes: the host's memory as the cache shows it.
        assert stats["memory"][-1] == host["memory"]["size"]
        assert stats["memoryFree"][-1] <= stats["memory"][-1]
        assert stats["load"] and stats["runningVcpus"]
        srs = {sr["uuid"][:8] for sr in (await env.objects({"type": "SR"})).values()}
        assert set(stats["iops"]["r"]) <= srs and stats["iops"]["r"]
        assert set(stats["latency"]) == {"r", "w", "total"}


async def test_sr_stats_merge_its_hosts(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        shared = next(iter((await env.objects({"type": "SR", "shared": True})).values()))
        result = await env.client.call("sr.stats", {"id": shared["id"]})
        hosts = await env.objects({"type": "host"})
        stats = result["stats"]
        assert set(stats["iowait"]) == {host["name_label"] for host in hosts.values()}
        key = shared["uuid"][:8]
        per_host = [
            (await env.client.call("host.stats", {"host": host_id}))["stats"] for host_id in hosts
        ]
        # IOPS summed over the hosts (the same cached rows: the values add up exactly).
        assert stats["iops"]["r"][0] == sum(s["iops"]["r"][key][0] for s in per_host)
        assert set(stats) == {"iops", "ioThroughput", "latency", "iowait"}


async def test_one_fetch_per_host_and_step(tmp_path: Path) -> None:
    async with commands_env(tmp_path, vms=12) as env:
        vms = await env.objects({"type": "VM", "power_state": "Running"})
        by_host: dict[str, list[str]] = {}
        for vm in vms.values():
            by_host.setdefault(vm["$container"], []).append(vm["id"])
        host_id, vm_ids = max(by_host.items(), key=lambda item: len(item[1]))
        assert len(vm_ids) >= 2
        log = env.sim.pool.call_log
        before = list(log).count("host.get_servertime")
        for vm_id in vm_ids:
            await env.client.call("vm.stats", {"id": vm_id})
        await env.client.call("host.stats", {"host": host_id})
        # The host's answer served every VM on it and the host itself.
        assert list(log).count("host.get_servertime") - before == 1
        await env.client.call("host.stats", {"host": host_id, "granularity": "minutes"})
        assert list(log).count("host.get_servertime") - before == 2


async def test_stats_errors(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = await running_vm(env)
        error = await error_of(env, "vm.stats", {"id": vm["id"], "granularity": "weeks"})
        assert error.code == -32000
        assert error.error["message"] == (
            "Unknown granularity: 'weeks'. Use 'seconds', 'minutes', 'hours', or 'days'."
        )
        halted = await env.vm_in_state("Halted")
        error = await error_of(env, "vm.stats", {"id": halted["id"]})
        assert error.code == 25 and error.data is not None
        assert error.data["property"] == "resident_on"
        error = await error_of(env, "host.stats", {"host": vm["id"]})
        assert error.code == 1
        error = await error_of(env, "sr.stats", {})
        assert error.code == 10
        # The daemon keeps serving.
        assert (await env.client.call("vm.stats", {"id": vm["id"]}))["interval"] == 5
