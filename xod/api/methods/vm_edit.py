"""The VM edit engine behind `vm.set` and `vm.create`, as xo-server's `_editVm` applies it.

Every param is checked before anything is written (a refused value changes nothing). Then each
field is written in XO's spec order; a field with a getter is skipped when the VM already has
the value; a write that a constraint on another field forbids first writes that other field
(`CPUs` above `VCPUs_max` raises the max, `memoryStaticMax` below the dynamic max lowers it...).
Map fields (`platform`, `other_config`, `VCPUs_params`, `HVM_boot_params`, `blocked_operations`,
`xenstore_data`) are written as `remove_from_<field>` then `add_to_<field>`, as xen-api does.
"""

from __future__ import annotations

import re
from typing import Any

from xod.api import errors
from xod.api.commands import Command
from xod.xapi import NULL_REF
from xod.xapi.errors import XapiError

# vm.set's `high_availability` values (VM.ha_restart_priority); booleans are XO's legacy form.
HA_PRIORITIES = ("", "best-effort", "restart")
VGA_KINDS = ("std", "cirrus")
VIDEORAM_SIZES = (1, 2, 4, 8, 16)
VIRTUALIZATION_MODES = ("pv", "hvm")
# The params this engine understands (vm.create hands it every param it does not use itself).
EDIT_PARAMS = frozenset(
    {
        "name_label",
        "name_description",
        "notes",
        "auto_poweron",
        "high_availability",
        "CPUs",
        "cpusMax",
        "memory",
        "memoryMin",
        "memoryMax",
        "memoryStaticMax",
        "PV_args",
        "cpuMask",
        "cpuWeight",
        "cpuCap",
        "affinityHost",
        "vga",
        "videoram",
        "coresPerSocket",
        "hasVendorDevice",
        "expNestedHvm",
        "nestedVirt",
        "startDelay",
        "secureBoot",
        "nicType",
        "hvmBootFirmware",
        "virtualizationMode",
        "viridian",
        "blockedOperations",
        "xenStoreData",
        "suspendSr",
        "tags",
    }
)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([KMGTPE])i?)?B?\s*$")
_SIZE_FACTORS = {None: 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50, "E": 2**60}
_MEMORY_VIOLATIONS = ("MEMORY_CONSTRAINT_VIOLATION",)


def parse_size(value: int | str, name: str) -> int:
    """XO's parseSize: bytes as an integer, or a human size in binary units ("10GiB", "512M")."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if match is None:
        raise errors.invalid_parameter(f"/{name}", "format", f"invalid size: {value}")
    return int(float(match.group(1)) * _SIZE_FACTORS[match.group(2)])


def _check(params: dict[str, Any]) -> None:
    """The value checks xo-server makes inside its setters, made before any write."""
    if "vga" in params and params["vga"] not in VGA_KINDS:
        raise errors.invalid_parameter("/vga", "enum", "must be one of std, cirrus")
    if "videoram" in params and params["videoram"] not in VIDEORAM_SIZES:
        raise errors.invalid_parameter("/videoram", "enum", "must be one of 1, 2, 4, 8, 16")
    mode = params.get("virtualizationMode")
    if mode is not None and mode not in VIRTUALIZATION_MODES:
        raise errors.invalid_parameter("/virtualizationMode", "enum", "must be pv or hvm")
    for key in params.get("xenStoreData") or {}:
        _xenstore_key(key)
    for name in ("memory", "memoryMin", "memoryMax", "memoryStaticMax"):
        if name in params:
            params[name] = parse_size(params[name], name)


def _xenstore_key(key: str) -> str:
    """`vm-data/<key>`: a leading `vm-data/` is not doubled; empty, `..` or absolute refused."""
    key = key.removeprefix("vm-data/")
    if not key or ".." in key or key.startswith("/"):
        raise errors.invalid_parameter("/xenStoreData", "key", f"invalid xenstore key: {key}")
    return f"vm-data/{key}"


class VmEditor:
    """Writes the edit params to one VM through `command` (the VM's own pool)."""

    def __init__(self, command: Command, vm: dict[str, Any]) -> None:
        self.command = command
        self.vm = dict(vm)  # a copy: it follows the writes, the cached object must not
        self.ref: str = vm["_xapiRef"]

    async def _call(self, method: str, *args: Any) -> Any:
        return await self.command.call(method, self.ref, *args)

    async def set_entry(self, field: str, key: str, value: str | None) -> None:
        """One map entry; None removes it."""
        await self._call(f"VM.remove_from_{field}", key)
        if value is not None:
            await self._call(f"VM.add_to_{field}", key, value)

    @property
    def live(self) -> bool:
        return self.vm.get("power_state") in ("Running", "Paused")

    # -- CPUs and memory: the fields with constraints ----------------------------------------

    async def set_cpus_max(self, value: int) -> None:
        if self.vm["CPUs"]["number"] > value:  # constraint: at_startup <= max
            await self._call("VM.set_VCPUs_at_startup", value)
            self.vm["CPUs"] = {**self.vm["CPUs"], "number": value}
        await self._call("VM.set_VCPUs_max", value)
        self.vm["CPUs"] = {**self.vm["CPUs"], "max": value}

    async def set_cpus(self, value: int) -> None:
        if self.vm["CPUs"]["max"] < value:  # constraint: max >= at_startup
            await self.set_cpus_max(value)
        await self._call("VM.set_VCPUs_at_startup", value)
        if self.vm.get("power_state") == "Running":
            await self._call("VM.set_VCPUs_number_live", value)
        self.vm["CPUs"] = {**self.vm["CPUs"], "number": value}

    async def set_memory_max(self, size: int) -> None:
        """The dynamic max: the dynamic range of a live VM, every limit of a halted one."""
        static_min, static_max = self.vm["memory"]["static"]
        dynamic_min = self.vm["memory"]["dynamic"][0]
        limits = [min(static_min, size), max(size, static_max), min(dynamic_min, size), size]
        try:
            if self.live:
                await self._call("VM.set_memory_dynamic_range", min(dynamic_min, size), size)
                limits[:2] = static_min, static_max
            else:
                try:
                    await self._call("VM.set_memory_limits", *limits)
                except XapiError as error:
                    if not error.code.startswith(_MEMORY_VIOLATIONS):
                        raise
                    limits = [min(static_min, size), size, size, size]
                    await self._call("VM.set_memory_limits", *limits)
        except XapiError as error:
            if self.live and error.code.startswith(_MEMORY_VIOLATIONS):
                raise errors.unknown_error("Cannot change memory on running VM") from None
            raise
        self.vm["memory"] = {"static": limits[:2], "dynamic": limits[2:]}

    async def set_memory(self, size: int) -> None:
        """XO's `memory`: the dynamic max when DMC is in use, else one fixed size."""
        dynamic_min, dynamic_max = self.vm["memory"]["dynamic"]
        static_min, static_max = self.vm["memory"]["static"]
        if dynamic_min != dynamic_max or dynamic_min != static_max:
            await self.set_memory_max(size)
        else:
            limits = [min(static_min, size), size, size, size]
            await self._call("VM.set_memory_limits", *limits)
            self.vm["memory"] = {"static": limits[:2], "dynamic": limits[2:]}

    # -- the whole edit ----------------------------------------------------------------------

    async def apply(self, params: dict[str, Any]) -> None:
        _check(params)
        vm, get = self.vm, params.get
        # vm.set writes these two before the edit proper, as xo-server does.
        if "suspendSr" in params:
            sr_id = params["suspendSr"]
            await self._call(
                "VM.set_suspend_SR", self.command.ref_of(sr_id, "SR") if sr_id else NULL_REF
            )
        for key, value in (get("xenStoreData") or {}).items():
            await self.set_entry("xenstore_data", _xenstore_key(key), value)
        if "name_label" in params and params["name_label"] != vm.get("name_label"):
            await self._call("VM.set_name_label", params["name_label"])
        if "name_description" in params and params["name_description"] != vm.get(
            "name_description"
        ):
            await self._call("VM.set_name_description", params["name_description"])
        if "notes" in params:
            await self.set_entry("other_config", "xo:notes", get("notes"))
        if "auto_poweron" in params and params["auto_poweron"] != vm.get("auto_poweron"):
            await self.set_entry(
                "other_config", "auto_poweron", "true" if get("auto_poweron") else None
            )
            if get("auto_poweron"):  # as xo-server: the pool starts VMs at boot too
                pool = self.command.store.get(vm["$pool"]) or {}
                pool_ref = pool.get("_xapiRef")
                if pool_ref:
                    await self.command.call(
                        "pool.remove_from_other_config", pool_ref, "auto_poweron"
                    )
                    await self.command.call(
                        "pool.add_to_other_config", pool_ref, "auto_poweron", "true"
                    )
        if "high_availability" in params:
            priority = params["high_availability"]
            if isinstance(priority, bool):
                priority = "restart" if priority else ""
            if priority != vm.get("high_availability"):
                await self._call("VM.set_ha_restart_priority", priority)
        if "CPUs" in params and params["CPUs"] != vm["CPUs"]["number"]:
            await self.set_cpus(int(params["CPUs"]))
        if "cpusMax" in params and int(params["cpusMax"]) != vm["CPUs"]["max"]:
            await self.set_cpus_max(int(params["cpusMax"]))
        if "memoryMin" in params and params["memoryMin"] != vm["memory"]["dynamic"][0]:
            if vm["memory"]["dynamic"][1] < params["memoryMin"]:  # constraint: max >= min
                await self.set_memory_max(get("memoryMax", params["memoryMin"]))
            await self._call("VM.set_memory_dynamic_min", params["memoryMin"])
            vm["memory"] = {
                **vm["memory"],
                "dynamic": [params["memoryMin"], vm["memory"]["dynamic"][1]],
            }
        if "memory" in params and params["memory"] != vm["memory"]["dynamic"][1]:
            await self.set_memory(params["memory"])
        if "memoryMax" in params and params["memoryMax"] != vm["memory"]["dynamic"][1]:
            await self.set_memory_max(params["memoryMax"])
        if "memoryStaticMax" in params and params["memoryStaticMax"] != vm["memory"]["static"][1]:
            size = params["memoryStaticMax"]
            if vm["memory"]["dynamic"][1] > size:  # constraint: dynamic max <= static max
                await self.set_memory_max(get("memoryMax", size))
            await self._call("VM.set_memory_static_max", size)
        if "PV_args" in params and params["PV_args"] != vm.get("PV_args"):
            await self._call("VM.set_PV_args", params["PV_args"])
        if "cpuMask" in params:
            mask = get("cpuMask")
            await self.set_entry("VCPUs_params", "mask", ",".join(map(str, mask)) if mask else None)
        for name, key in (("cpuWeight", "weight"), ("cpuCap", "cap")):
            if name in params:
                value = params[name]
                await self.set_entry("VCPUs_params", key, None if value is None else str(value))
        if "affinityHost" in params:
            host_id = params["affinityHost"]
            if host_id != vm.get("affinityHost"):
                host_ref = self.command.ref_of(host_id, "host") if host_id else NULL_REF
                await self._call("VM.set_affinity", host_ref)
        if "vga" in params:
            await self.set_entry("platform", "vga", params["vga"])
        if "videoram" in params:
            await self.set_entry("platform", "videoram", str(params["videoram"]))
        if "coresPerSocket" in params:
            platform = dict(await self._call("VM.get_platform"))
            cores = params["coresPerSocket"]
            if cores is None:
                platform.pop("cores-per-socket", None)
            else:
                platform["cores-per-socket"] = str(cores)
            await self._call("VM.set_platform", platform)
        if "hasVendorDevice" in params and params["hasVendorDevice"] != vm.get("hasVendorDevice"):
            await self._call("VM.set_has_vendor_device", params["hasVendorDevice"])
        for name, key in (("expNestedHvm", "exp-nested-hvm"), ("nestedVirt", "nested-virt")):
            if name in params:
                await self.set_entry("platform", key, "true" if params[name] else None)
        if "startDelay" in params and params["startDelay"] != vm.get("startDelay"):
            await self._call("VM.set_start_delay", params["startDelay"])
        if "secureBoot" in params:
            await self.set_entry(
                "platform", "secureboot", "true" if params["secureBoot"] else "false"
            )
        if "nicType" in params:
            await self.set_entry("platform", "nic_type", get("nicType"))
        if "hvmBootFirmware" in params:
            firmware = get("hvmBootFirmware")
            await self.set_entry("HVM_boot_params", "firmware", firmware)
            model = "qemu-upstream-uefi" if firmware == "uefi" else "qemu-upstream-compat"
            await self.set_entry("platform", "device-model", model)
        if "virtualizationMode" in params and params["virtualizationMode"] != vm.get(
            "virtualizationMode"
        ):
            await self._call("VM.set_domain_type", params["virtualizationMode"])
        if "viridian" in params:
            await self.set_entry("platform", "viridian", "true" if params["viridian"] else "false")
        for operation, reason in (get("blockedOperations") or {}).items():
            if reason is True:
                reason = "true"
            await self.set_entry("blocked_operations", operation, reason or None)
        if "tags" in params:
            await self._call("VM.set_tags", list(params["tags"]))
