"""pool.* and host.* (settings, master, leaving the pool, emergency shutdown) and the reads
Xen Orchestra's UI makes on every page, through xod's JSON-RPC API against the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.harness import RpcError
from tests.api.test_commands_support import Env, commands_env
from xod.sim.lifecycle.pool_admin import AVAILABLE_UPDATES


async def _error(env: Env, method: str, params: dict) -> RpcError:
    with pytest.raises(RpcError) as raised:
        await env.client.call(method, params)
    return raised.value


async def _pool(env: Env) -> dict:
    return next(iter((await env.objects({"type": "pool"})).values()))


async def _member(env: Env) -> dict:
    pool = await _pool(env)
    hosts = await env.objects({"type": "host"})
    return next(host for host_id, host in sorted(hosts.items()) if host_id != pool["master"])


async def test_pool_settings_and_reads(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        call = env.client.call
        pool = await _pool(env)
        pool_id = pool["id"]
        networks = sorted(await env.objects({"type": "network"}))
        srs = await env.objects({"type": "SR", "content_type": "user"})
        local = next(sr_id for sr_id, sr in sorted(srs.items()) if not sr["shared"])

        assert (
            await call(
                "pool.set",
                {
                    "id": pool_id,
                    "name_label": "prod",
                    "name_description": "",
                    "auto_poweron": True,
                    "backupNetwork": networks[0],
                    "migrationNetwork": networks[1],
                    "suspendSr": local,
                    "crashDumpSr": None,
                    "migrationCompression": True,
                },
            )
            is True
        )
        pool = await env.object(pool_id) or {}
        assert (pool["name_label"], pool["name_description"], pool["auto_poweron"]) == (
            "prod",
            "",
            True,
        )
        assert pool["otherConfig"]["xo:backupNetwork"] == networks[0]
        assert pool["otherConfig"]["xo:migrationNetwork"] == networks[1]
        assert (pool["suspendSr"], pool["crashDumpSr"]) == (local, None)
        assert env.sim_record("pool", pool_id)["migration_compression"] is True
        await call("pool.set", {"id": pool_id, "auto_poweron": False, "backupNetwork": None})
        pool = await env.object(pool_id) or {}
        assert pool["auto_poweron"] is False and "xo:backupNetwork" not in pool["otherConfig"]

        assert await call("pool.setDefaultSr", {"sr": local}) is True
        assert (await env.object(pool_id))["default_SR"] == local

        # The reads of every page: the host's clock, its scheduler, its missing updates.
        master = pool["master"]
        assert await call("host.isHostServerTimeConsistent", {"host": master}) is True
        master_ref = env.sim.pool.db.by_uuid("host", master)
        for skew, consistent in ((-25, True), (45, False), (-45, False)):
            env.sim.pool.clock_skew[master_ref] = skew
            result = await call("host.isHostServerTimeConsistent", {"host": master})
            assert result is consistent, skew
        del env.sim.pool.clock_skew[master_ref]
        assert await call("host.getSchedulerGranularity", {"id": master}) == "cpu"
        assert await call("pool.listMissingPatches", {"host": master}) == AVAILABLE_UPDATES

        error = await _error(env, "pool.set", {"id": pool_id, "backupNetwork": local})
        assert (error.code, error.data["type"]) == (1, "network")
        assert (
            "xo:migrationNetwork" in (await env.object(pool_id))["otherConfig"]
        )  # nothing changed
        for method, params in (
            ("pool.set", {"id": pool_id, "auto_poweron": "yes"}),
            ("pool.set", {"id": pool_id, "HA": True}),
            ("pool.setDefaultSr", {"id": local}),
            ("pool.listMissingPatches", {}),
            ("host.isHostServerTimeConsistent", {"id": master}),
            ("host.getSchedulerGranularity", {"id": master, "x": 1}),
        ):
            assert (await _error(env, method, params)).code == 10, (method, params)
        for method, params in (
            ("pool.listMissingPatches", {"host": pool_id}),
            ("host.isHostServerTimeConsistent", {"host": local}),
            ("host.getSchedulerGranularity", {"id": "nope"}),
            ("pool.setDefaultSr", {"sr": master}),
        ):
            assert (await _error(env, method, params)).code == 1, (method, params)


async def test_host_settings(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        call = env.client.call
        host_id = (await _pool(env))["master"]
        params = {
            "id": host_id,
            "name_label": "h1",
            "name_description": "rack 4",
            "iscsiIqn": "iqn.2026-12.test:h1",
            "multipathing": True,
        }
        assert await call("host.set", params) is True
        host = await env.object(host_id)
        assert (host["name_label"], host["name_description"], host["iscsiIqn"]) == (
            "h1",
            "rack 4",
            "iqn.2026-12.test:h1",
        )
        assert host["multipathing"] is True and host["enabled"] is True  # enabled again
        assert env.sim_record("host", host_id)["other_config"]["multipathhandle"] == "dmp"
        await call("host.set", {"id": host_id, "multipathing": False})
        assert (await env.object(host_id))["multipathing"] is False
        assert (await _error(env, "host.set", {"id": host_id, "multipathing": 1})).code == 10
        assert (await _error(env, "host.set", {"id": host_id, "name_label": ""})).code == 10


async def test_hosts_leaving_the_pool(tmp_path: Path) -> None:
    async with commands_env(tmp_path, hosts=3) as env:
        call = env.client.call
        pool = await _pool(env)
        master = pool["master"]
        member = await _member(env)

        error = await _error(env, "host.detach", {"id": master})
        assert (error.code, error.data["operation"]) == (5, "host.detach")
        assert any([(await env.object(vm))["type"] == "VM" for vm in member["residentVms"]])
        error = await _error(env, "host.detach", {"id": member["id"]})
        assert (error.code, error.data["code"]) == (21, "HOST_IN_USE")
        await call("host.setMaintenanceMode", {"id": member["id"], "maintenance": True})
        assert await call("host.detach", {"id": member["id"]}) is True
        assert (await env.object(member["id"])) is None
        assert all([(await env.object(pif)) is None for pif in member["PIFs"]])

        # Forgetting: only a dead host.
        other = await _member(env)
        error = await _error(env, "host.forget", {"id": other["id"]})
        assert (error.code, error.data) == (
            25,
            {
                "actual": "Running",
                "expected": "Halted",
                "object": other["id"],
                "property": "power_state",
            },
        )
        db = env.sim.pool.db
        db.update("host_metrics", env.sim_record("host", other["id"])["metrics"], {"live": False})
        assert await call("host.forget", {"id": other["id"]}) is True
        assert (await env.object(other["id"])) is None
        assert set(await env.objects({"type": "host"})) == {master}
        for method in ("host.detach", "host.forget"):
            assert (await _error(env, method, {"id": other["id"]})).code == 1
            assert (await _error(env, method, {"id": master, "force": True})).code == 10


async def test_emergency_shutdown_and_new_master(tmp_path: Path) -> None:
    async with commands_env(tmp_path, hosts=2, vms=8) as env:
        call = env.client.call
        pool_id = (await _pool(env))["id"]
        member = await _member(env)
        running = [
            vm_id
            for vm_id in member["residentVms"]
            if (await env.object(vm_id))["type"] == "VM"
            and (await env.object(vm_id))["power_state"] == "Running"
        ]
        assert running, "the member runs guests"
        assert await call("host.emergencyShutdownHost", {"host": member["id"]}) is True
        host = await env.object(member["id"])
        assert (host["enabled"], host["power_state"]) == (False, "Halted")
        assert all([(await env.object(vm_id))["power_state"] == "Suspended" for vm_id in running])
        assert (await _error(env, "host.emergencyShutdownHost", {"id": member["id"]})).code == 10

        # A halted host cannot become the master: XAPI's HOST_OFFLINE is XO's hostOffline.
        error = await _error(env, "pool.setPoolMaster", {"host": member["id"]})
        assert (error.code, error.data) == (18, {"objectId": member["id"]})

        # The other host becomes the master; xod follows it and keeps answering.
        db = env.sim.pool.db
        db.update("host_metrics", env.sim_record("host", member["id"])["metrics"], {"live": True})
        db.update("host", db.by_uuid("host", member["id"]), {"enabled": True})
        assert await call("pool.setPoolMaster", {"host": member["id"]}) is True
        assert (await env.object(pool_id))["master"] == member["id"]
        assert env.sim.pool.master == db.by_uuid("host", member["id"])
        assert await call("pool.set", {"id": pool_id, "name_label": "after"}) is True
        assert (await env.object(pool_id))["name_label"] == "after"
        assert (await _error(env, "pool.setPoolMaster", {"host": pool_id})).code == 1


async def test_rolling_reboot_and_pif_scan(tmp_path: Path) -> None:
    async with commands_env(tmp_path, hosts=2, vms=8) as env:
        call = env.client.call
        pool = await _pool(env)
        running = {
            vm_id: vm["$container"]
            for vm_id, vm in (await env.objects({"type": "VM", "power_state": "Running"})).items()
        }
        assert set(running.values()) == set(await env.objects({"type": "host"}))
        pifs = (await env.object(pool["master"]))["PIFs"]
        env.sim.pool.call_log.clear()
        assert await call("pool.rollingReboot", {"pool": pool["id"]}) is True
        reboots = [
            name
            for name in env.sim.pool.call_log
            if name in ("Async.host.reboot", "Async.host.evacuate")
        ]
        assert reboots == ["Async.host.evacuate", "Async.host.reboot"] * 2
        hosts = await env.objects({"type": "host"})
        assert all(h["enabled"] and h["power_state"] == "Running" for h in hosts.values())
        for vm_id in running:
            assert (await env.object(vm_id))["power_state"] == "Running", vm_id
        # The master went first: its guests are on the other host, which went last and
        # sent its own guests (the master's, too) back to the master.
        assert {(await env.object(vm_id))["$container"] for vm_id in running} == {pool["master"]}

        assert await call("host.scanPifs", {"id": pool["master"]}) is True
        assert (await env.object(pool["master"]))[
            "PIFs"
        ] == pifs  # a simulated host's stay the same
        assert (await _error(env, "pool.rollingReboot", {"pool": pool["id"], "x": 1})).code == 10


async def test_rolling_reboot_needs_somewhere_to_go(tmp_path: Path) -> None:
    async with commands_env(tmp_path, hosts=1, vms=4) as env:
        pool = await _pool(env)
        error = await _error(env, "pool.rollingReboot", {"pool": pool["id"]})
        assert error.code == 7  # NO_HOSTS_AVAILABLE
        # The round stopped before the reboot, the host enabled again.
        assert (await env.object(pool["master"]))["enabled"] is True
        assert "Async.host.reboot" not in env.sim.pool.call_log
