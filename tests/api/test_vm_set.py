"""vm.set with every field xo-server accepts, through xod's JSON-RPC API against the simulator:
the effect is in the cache when the call returns (read straight from the store); constraints
write the other field first as XO does; XAPI errors arrive as XO codes; a refused value writes
nothing."""

from __future__ import annotations

from pathlib import Path

from tests.api.test_commands_support import commands_env
from tests.api.test_vm_create_support import GiB, act, by_label, cached, error_of


async def test_set_cpus_and_memory_with_xo_constraints(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        vm = cached(env, vm_id)
        max_cpus = vm["CPUs"]["max"]
        # The case: CPUs above VCPUs_max on a halted VM raises the max first.
        assert await act(env, "vm.set", {"id": vm_id, "CPUs": max_cpus + 2}) is True
        assert cached(env, vm_id)["CPUs"] == {"max": max_cpus + 2, "number": max_cpus + 2}
        # A max below the vCPUs at startup lowers them first.
        await act(env, "vm.set", {"id": vm_id, "cpusMax": 1})
        assert cached(env, vm_id)["CPUs"] == {"max": 1, "number": 1}

        # Memory: the dynamic max (halted: every limit), sizes as bytes or human strings.
        await act(env, "vm.set", {"id": vm_id, "memoryMax": "3GiB"})
        memory = cached(env, vm_id)["memory"]
        assert memory["dynamic"][1] == 3 * GiB and memory["static"][1] >= 3 * GiB
        await act(env, "vm.set", {"id": vm_id, "memoryStaticMax": 6 * GiB, "memoryMin": 3 * GiB})
        memory = cached(env, vm_id)["memory"]
        assert (memory["static"][1], memory["dynamic"]) == (6 * GiB, [3 * GiB, 3 * GiB])
        # xapi's order static_min <= dynamic_min: refused, as operationFailed with its code.
        error = await error_of(env, "vm.set", {"id": vm_id, "memoryMin": 1})
        assert (error.code, error.error["data"]["code"]) == (21, "MEMORY_CONSTRAINT_VIOLATION")
        # A static max below the dynamic max: the dynamic max is lowered first.
        await act(env, "vm.set", {"id": vm_id, "memoryStaticMax": 2 * GiB})
        memory = cached(env, vm_id)["memory"]
        assert memory["static"][1] == 2 * GiB and memory["dynamic"][1] == 2 * GiB
        # `memory` without DMC: one fixed size.
        await act(env, "vm.set", {"id": vm_id, "memoryMin": 2 * GiB})
        await act(env, "vm.set", {"id": vm_id, "memory": 5 * GiB})
        memory = cached(env, vm_id)["memory"]
        assert (memory["dynamic"], memory["static"][1]) == ([5 * GiB, 5 * GiB], 5 * GiB)
        # A dynamic max above the static max asked for in the same call: refused, not half done.
        error = await error_of(
            env, "vm.set", {"id": vm_id, "memoryMax": 7 * GiB, "memoryStaticMax": 5 * GiB}
        )
        assert (error.code, error.error["data"]["code"]) == (21, "MEMORY_CONSTRAINT_VIOLATION")

        # A running VM: the dynamic range only; vCPUs live up to the max.
        running = await env.vm_in_state("Running")
        static_max = running["memory"]["static"][1]
        await act(env, "vm.set", {"id": running["id"], "memoryMax": static_max // 2})
        assert cached(env, running["id"])["memory"]["dynamic"][1] == static_max // 2
        error = await error_of(env, "vm.set", {"id": running["id"], "memoryMax": 2 * static_max})
        assert (error.code, error.error["message"]) == (
            -32000,
            "Cannot change memory on running VM",
        )
        await act(env, "vm.set", {"id": running["id"], "CPUs": 1})
        assert cached(env, running["id"])["CPUs"]["number"] == 1
        # XAPI refuses a max change on a running VM: VM_BAD_POWER_STATE → 13.
        error = await error_of(env, "vm.set", {"id": running["id"], "CPUs": 32})
        assert (error.code, error.error["data"]["objectId"]) == (13, running["id"])


async def test_set_platform_boot_and_map_fields(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm_id = (await env.vm_in_state("Halted"))["id"]
        sr = by_label(env, "SR", "NFS storage")
        assert (
            await act(
                env,
                "vm.set",
                {
                    "id": vm_id,
                    "vga": "std",
                    "videoram": 8,
                    "secureBoot": True,
                    "expNestedHvm": True,
                    "nestedVirt": True,
                    "viridian": True,
                    "startDelay": 30,
                    "coresPerSocket": 1,
                    "hvmBootFirmware": "uefi",
                    "hasVendorDevice": True,
                    "nicType": "e1000",
                    "notes": "backed up nightly",
                    "cpuCap": 50,
                    "cpuWeight": 512,
                    "cpuMask": [0, 1],
                    "suspendSr": sr["id"],
                    "blockedOperations": {"destroy": True, "clone": "golden image"},
                    "xenStoreData": {"role": "web", "vm-data/site": "eu"},
                },
            )
            is True
        )
        vm = cached(env, vm_id)
        assert (vm["vga"], int(vm["videoram"])) == ("std", 8)
        assert vm["secureBoot"] is True and vm["expNestedHvm"] is True and vm["viridian"] is True
        assert (vm["startDelay"], vm["coresPerSocket"]) == (30, 1)
        assert vm["boot"]["firmware"] == "uefi" and vm["hasVendorDevice"] is True
        assert (vm["nicType"], vm["notes"]) == ("e1000", "backed up nightly")
        assert (vm["cpuCap"], vm["cpuWeight"], vm["cpuMask"]) == (50, 512, [0, 1])
        assert vm["suspendSr"] == sr["id"]
        assert vm["blockedOperations"] == {"destroy": "true", "clone": "golden image"}
        assert vm["xenStoreData"] == {"vm-data/role": "web", "vm-data/site": "eu"}
        platform = env.sim_record("VM", vm["uuid"])["platform"]
        assert platform["nested-virt"] == "true"
        assert platform["device-model"] == "qemu-upstream-uefi"

        # Removals: null / false entries go, the others stay.
        await act(
            env,
            "vm.set",
            {
                "id": vm_id,
                "blockedOperations": {"destroy": None, "clone": False},
                "xenStoreData": {"role": None},
                "secureBoot": False,
                "expNestedHvm": False,
                "cpuCap": None,
                "notes": None,
                "coresPerSocket": None,
                "suspendSr": None,
            },
        )
        vm = cached(env, vm_id)
        assert vm["blockedOperations"] == {} and vm["xenStoreData"] == {"vm-data/site": "eu"}
        assert vm["secureBoot"] is False and vm["expNestedHvm"] is False
        # Keys XO leaves out when unset are absent.
        assert "cpuCap" not in vm and "notes" not in vm and "coresPerSocket" not in vm
        assert vm.get("suspendSr") is None

        # Virtualization mode (halted only): a PV guest shows its PV args.
        await act(env, "vm.set", {"id": vm_id, "virtualizationMode": "pv"})
        await act(env, "vm.set", {"id": vm_id, "PV_args": "console=hvc0"})
        vm = cached(env, vm_id)
        assert (vm["virtualizationMode"], vm["PV_args"]) == ("pv", "console=hvc0")

        # auto_poweron also turns the pool's on, as xo-server does.
        await act(env, "vm.set", {"id": vm_id, "auto_poweron": True})
        pool = env.sim.pool.db.get("pool", env.sim.pool.pool_ref)
        assert pool["other_config"]["auto_poweron"] == "true"


async def test_set_errors_and_invalid_params(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env:
        vm = await env.vm_in_state("Halted")
        vm_id = vm["id"]
        running = await env.vm_in_state("Running")
        # An XAPI refusal: a running VM's domain type → VM_BAD_POWER_STATE (13).
        error = await error_of(env, "vm.set", {"id": running["id"], "virtualizationMode": "pv"})
        assert error.code == 13
        # A checked value refused: nothing is written, not even the valid fields.
        for params in (
            {"vga": "vesa"},
            {"videoram": 3},
            {"xenStoreData": {"../escape": "x"}},
            {"xenStoreData": {"/abs": "x"}},
            {"memoryMax": "lots"},
        ):
            error = await error_of(env, "vm.set", {"id": vm_id, "name_label": "changed", **params})
            assert error.code == 10, params
        assert cached(env, vm_id)["name_label"] == vm["name_label"]
        # Schema: unknown fields, wrong types, no id, unknown VM.
        for params in (
            {"id": vm_id, "resourceSet": 5},
            {"id": vm_id, "secureBoot": "yes"},
            {"id": vm_id, "startDelay": "soon"},
            {"id": vm_id, "blockedOperations": {"destroy": 1}},
            {"id": vm_id, "virtualizationMode": "pvh"},
            {"name_label": "x"},
        ):
            assert (await error_of(env, "vm.set", params)).code == 10, params
        assert (await error_of(env, "vm.set", {"id": "nope", "vga": "std"})).code == 1
