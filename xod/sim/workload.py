"""The workload generator: builds a realistic pool fast (records from precomputed class
defaults, no per-field validation, reverse references computed once at the end).

Why this module is long: it is one builder writing every record of a pool — networks, SRs,
hosts with their PIFs, PBDs and metrics, templates, VMs with their disks, VIFs and snapshots —
and each part shares the builder's random generator and the refs made before it; most of the
length is the records' field values, one per line.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from xod.sim.db import Database
from xod.sim.schema import CLASSES
from xod.sim.values import NULL_REF, DateTime, datetime_at
from xod.sim.vm_states import allowed_operations

if TYPE_CHECKING:
    from xod.sim.pool import SimConfig

GiB = 1024**3
MiB = 1024**2

_TEMPLATE_NAMES = (
    "Debian Bookworm 12",
    "Debian Bullseye 11",
    "Ubuntu Jammy Jellyfish 22.04",
    "Ubuntu Noble Numbat 24.04",
    "CentOS Stream 9",
    "Rocky Linux 9",
    "AlmaLinux 9",
    "Red Hat Enterprise Linux 9",
    "SUSE Linux Enterprise Server 15",
    "Oracle Linux 9",
    "Windows Server 2022 (64-bit)",
    "Windows Server 2019 (64-bit)",
    "Windows 11",
    "Windows 10 (64-bit)",
    "Other install media",
    "Generic Linux UEFI",
    "Generic Linux BIOS",
    "Alpine Linux 3.19",
    "Fedora 40",
    "FreeBSD 14",
)
_OS = (
    ({"name": "Debian GNU/Linux 12 (bookworm)", "distro": "debian", "major": "12", "minor": "5"}),
    ({"name": "Ubuntu 22.04.4 LTS", "distro": "ubuntu", "major": "22", "minor": "04"}),
    ({"name": "Rocky Linux 9.3", "distro": "rocky", "major": "9", "minor": "3"}),
    ({"name": "Microsoft Windows Server 2022", "distro": "windows", "major": "10", "minor": "0"}),
)


def _rec(cls: str, **values: Any) -> dict[str, Any]:
    record = CLASSES[cls].defaults.copy()
    record.update(values)
    return record


def _mac(rng: random.Random) -> str:
    h = f"{rng.getrandbits(40):010x}"
    return f"02:{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}:{h[8:10]}"


# Identifiers come from an unseeded generator (two pools built with one seed must not share
# refs) and are formatted by hand: uuid.uuid4() is most of the build time of a 10k-VM pool.
_ids = random.Random()


def fast_uuid() -> str:
    h = f"{_ids.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def fast_ref() -> str:
    return f"OpaqueRef:{fast_uuid()}"


class Builder:
    """Builds records into `db`; keeps the handful of refs later steps need."""

    def __init__(self, db: Database, config: SimConfig) -> None:
        self.db = db
        self.config = config
        self.rng = random.Random(config.seed)
        self.now = time.time()
        self.stamp = datetime_at(self.now)
        self.hosts: list[str] = []
        self.networks: list[str] = []
        self.local_srs: dict[str, str] = {}
        self.shared_sr = NULL_REF
        self.iso_sr = NULL_REF
        self.pool = NULL_REF
        self._domids: dict[str, int] = {}

    def add(self, cls: str, record: dict[str, Any], ref: str | None = None) -> str:
        ref = ref or fast_ref()
        self.db.load(cls, ref, record)
        return ref

    # ---------------------------------------------------------------- infrastructure

    def build(self) -> None:
        config = self.config
        addresses = config.host_addresses or [f"127.0.0.{1 + i}" for i in range(config.hosts)]
        self.networks = [
            self.add(
                "network",
                _rec(
                    "network",
                    uuid=fast_uuid(),
                    name_label=label,
                    name_description=desc,
                    bridge=bridge,
                    MTU=1500,
                    other_config={"automatic": "true"} if bridge else {},
                ),
            )
            for label, desc, bridge in (
                ("Pool-wide network associated with eth0", "", "xenbr0"),
                ("Pool-wide network associated with eth1", "", "xenbr1"),
                ("Storage network", "VLAN 20 on eth1", "xapi1"),
            )
        ]
        self.shared_sr = self._sr("NFS storage", "nfs", "user", True, 4096 * GiB)
        self.iso_sr = self._sr("ISO library", "iso", "iso", True, 512 * GiB)
        for index in range(config.hosts):
            self._host(index, addresses[index])
        self.pool = self.add(
            "pool",
            _rec(
                "pool",
                uuid=fast_uuid(),
                name_label="Simulated pool",
                master=self.hosts[0],
                default_SR=self.shared_sr,
                suspend_image_SR=self.shared_sr,
                crash_dump_SR=self.shared_sr,
                other_config={},
                cpu_info={"cpu_count": str(16 * config.hosts), "vendor": "GenuineIntel"},
                allowed_operations=["ha_enable", "designate_new_master"],
            ),
        )
        for index in range(config.templates):
            self._template(index)
        snapshot_every = 50
        for index in range(config.vms):
            vm = self._user_vm(index)
            if index % snapshot_every == snapshot_every - 1:
                self._snapshot(vm)
        self.db.rebuild_reverse_references()

    def _sr(self, label: str, sr_type: str, content: str, shared: bool, size: int) -> str:
        return self.add(
            "SR",
            _rec(
                "SR",
                uuid=fast_uuid(),
                name_label=label,
                type=sr_type,
                content_type=content,
                shared=shared,
                physical_size=size,
                physical_utilisation=size // 4,
                virtual_allocation=size // 3,
                other_config={},
                allowed_operations=[
                    "vdi_create",
                    "vdi_destroy",
                    "vdi_clone",
                    "vdi_snapshot",
                    "scan",
                    "plug",
                    "unplug",
                ],
            ),
        )

    def _host(self, index: int, address: str) -> None:
        host = fast_ref()
        self.hosts.append(host)
        self._domids[host] = 0
        metrics = self.add(
            "host_metrics",
            _rec(
                "host_metrics",
                uuid=fast_uuid(),
                memory_total=256 * GiB,
                memory_free=160 * GiB,
                live=True,
                last_updated=self.stamp,
            ),
        )
        dom0 = self._vm(
            f"Control domain on host: xcp-host-{index + 1}",
            "Running",
            host,
            is_control_domain=True,
            memory=4 * GiB,
            vcpus=8,
            domid=0,
        )
        self.add(
            "host",
            _rec(
                "host",
                uuid=fast_uuid(),
                name_label=f"xcp-host-{index + 1}",
                hostname=f"xcp-host-{index + 1}",
                address=address,
                enabled=True,
                API_version_major=2,
                API_version_minor=21,
                API_version_vendor="XenSource",
                API_version_vendor_implementation={},
                software_version={
                    "product_version": "8.3.0",
                    "product_brand": "XCP-ng",
                    "xapi": "24.19",
                    "build_number": "release/yangtze",
                    "platform_version": "3.4.0",
                    "xen": "4.17.4",
                },
                other_config={},
                capabilities=["xen-3.0-x86_64", "hvm-3.0-x86_64"],
                cpu_configuration={},
                sched_policy="credit",
                supported_bootloaders=["pygrub", "eliloader"],
                logging={},
                suspend_image_sr=self.shared_sr,
                crash_dump_sr=self.shared_sr,
                cpu_info={
                    "cpu_count": "16",
                    "socket_count": "2",
                    "vendor": "GenuineIntel",
                    "speed": "2600.000",
                    "modelname": "Intel(R) Xeon(R) Silver 4210",
                },
                metrics=metrics,
                control_domain=dom0,
                memory_overhead=512 * MiB,
                license_params={"sku_type": "free"},
                edition="xcp-ng",
                bios_strings={"system-manufacturer": "Simulated"},
                allowed_operations=[
                    "provision",
                    "evacuate",
                    "shutdown",
                    "reboot",
                    "vm_start",
                    "vm_resume",
                    "vm_migrate",
                ],
            ),
            host,
        )
        for position, network in enumerate(self.networks[:2]):
            self.add(
                "PIF",
                _rec(
                    "PIF",
                    uuid=fast_uuid(),
                    device=f"eth{position}",
                    network=network,
                    host=host,
                    MAC=_mac(self.rng),
                    MTU=1500,
                    VLAN=-1,
                    physical=True,
                    currently_attached=True,
                    management=position == 0,
                    ip_configuration_mode="Static" if position == 0 else "None",
                    IP=address if position == 0 else "",
                    netmask="255.0.0.0" if position == 0 else "",
                    other_config={},
                ),
            )
        local = self._sr(f"Local storage on xcp-host-{index + 1}", "lvm", "user", False, 512 * GiB)
        self.local_srs[host] = local
        for sr in (local, self.shared_sr, self.iso_sr):
            self.add(
                "PBD",
                _rec(
                    "PBD",
                    uuid=fast_uuid(),
                    host=host,
                    SR=sr,
                    currently_attached=True,
                    device_config={"device": "/dev/sda3"}
                    if sr == local
                    else {"server": "10.0.0.5", "serverpath": "/export"},
                ),
            )

    # ---------------------------------------------------------------- VMs

    def _vm(
        self,
        label: str,
        power_state: str,
        host: str,
        *,
        is_control_domain: bool = False,
        is_a_template: bool = False,
        is_default_template: bool = False,
        memory: int = 2 * GiB,
        vcpus: int = 2,
        domid: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        live = power_state in ("Running", "Paused")
        if live and domid is None:
            self._domids[host] += 1
            domid = self._domids[host]
        vm = fast_ref()
        metrics = self.add(
            "VM_metrics",
            _rec(
                "VM_metrics",
                uuid=fast_uuid(),
                memory_actual=memory if live else 0,
                VCPUs_number=vcpus if live else 0,
                VCPUs_utilisation={str(i): 0.0 for i in range(vcpus)} if live else {},
                VCPUs_CPU={},
                VCPUs_params={},
                VCPUs_flags={},
                state=[],
                start_time=self.stamp if live else DateTime("19700101T00:00:00Z"),
                install_time=self.stamp,
                last_updated=self.stamp,
                current_domain_type="hvm" if live else "unspecified",
            ),
        )
        guest_metrics = NULL_REF
        if live and not is_control_domain:
            guest_metrics = self.add(
                "VM_guest_metrics",
                _rec(
                    "VM_guest_metrics",
                    uuid=fast_uuid(),
                    os_version=self.rng.choice(_OS),
                    PV_drivers_version={"major": "9", "minor": "3", "micro": "1"},
                    PV_drivers_up_to_date=True,
                    networks={
                        "0/ip": f"10.{self.rng.randrange(256)}.{self.rng.randrange(256)}."
                        f"{self.rng.randrange(1, 255)}"
                    },
                    other={
                        "feature-shutdown": "1",
                        "feature-suspend": "1",
                        "has-vendor-device": "0",
                    },
                    last_updated=self.stamp,
                    live=True,
                    can_use_hotplug_vbd="yes",
                    can_use_hotplug_vif="yes",
                    PV_drivers_detected=True,
                ),
            )
        record = _rec(
            "VM",
            uuid=fast_uuid(),
            name_label=label,
            power_state=power_state,
            user_version=1,
            is_a_template=is_a_template,
            is_default_template=is_default_template,
            resident_on=host if live else NULL_REF,
            affinity=NULL_REF,
            memory_static_max=memory,
            memory_dynamic_max=memory,
            memory_dynamic_min=memory,
            memory_static_min=memory // 4,
            memory_target=memory if live else 0,
            VCPUs_params={},
            VCPUs_max=vcpus,
            VCPUs_at_startup=vcpus,
            actions_after_shutdown="destroy",
            actions_after_reboot="restart",
            actions_after_crash="restart",
            PV_bootloader="",
            PV_kernel="",
            PV_ramdisk="",
            PV_args="",
            PV_bootloader_args="",
            PV_legacy_args="",
            HVM_boot_policy="BIOS order",
            HVM_boot_params={"order": "cdn"},
            platform={
                "acpi": "1",
                "apic": "true",
                "viridian": "false",
                # As XO leaves it on every VM it sees (one socket).
                "cores-per-socket": str(vcpus),
            },
            PCI_bus="",
            other_config={},
            domid=domid if live else -1,
            domarch="",
            is_control_domain=is_control_domain,
            metrics=metrics,
            guest_metrics=guest_metrics,
            recommendations="",
            domain_type="hvm",
        )
        if extra:
            record.update(extra)
        record["allowed_operations"] = allowed_operations(record)
        self.add("VM", record, vm)
        if live:
            self.add(
                "console",
                _rec(
                    "console",
                    uuid=(cuuid := fast_uuid()),
                    protocol="rfb",
                    VM=vm,
                    location=f"https://{host}/console?uuid={cuuid}",
                    other_config={},
                ),
            )
        return vm

    def _template(self, index: int) -> None:
        base = _TEMPLATE_NAMES[index % len(_TEMPLATE_NAMES)]
        label = (
            base if index < len(_TEMPLATE_NAMES) else f"{base} ({index // len(_TEMPLATE_NAMES)})"
        )
        default = index % 5 != 4  # most are shipped templates, some are custom
        self._vm(
            label,
            "Halted",
            NULL_REF,
            is_a_template=True,
            is_default_template=default,
            extra={"other_config": {"default_template": "true"} if default else {}},
        )

    def _user_vm(self, index: int) -> str:
        roll = self.rng.random()
        state = (
            "Running"
            if roll < 0.6
            else "Halted"
            if roll < 0.9
            else "Suspended"
            if roll < 0.95
            else "Paused"
        )
        host = self.hosts[index % len(self.hosts)]
        memory = self.rng.choice((1, 2, 4, 8)) * GiB
        vm = self._vm(
            f"vm-{index:05d}", state, host, memory=memory, vcpus=self.rng.choice((1, 2, 4))
        )
        sr = self.shared_sr if index % 4 else self.local_srs[host]
        for position in range(1 + (index % 3 == 0)):
            self._disk(vm, sr, position, state)
        self._vif(vm, self.networks[index % 2], state)
        if state == "Suspended":
            suspend_vdi = self._vdi(sr, f"Suspend image for vm-{index:05d}", 2 * memory, "suspend")
            self.db.tables["VM"][vm]["suspend_VDI"] = suspend_vdi
        return vm

    def _vdi(self, sr: str, label: str, size: int, vdi_type: str = "system", **extra: Any) -> str:
        return self.add(
            "VDI",
            _rec(
                "VDI",
                uuid=(vuuid := fast_uuid()),
                name_label=label,
                SR=sr,
                virtual_size=size,
                physical_utilisation=size // 3,
                type=vdi_type,
                sharable=False,
                read_only=False,
                other_config={},
                storage_lock=False,
                location=vuuid,
                managed=True,
                missing=False,
                parent=NULL_REF,
                allowed_operations=["clone", "copy", "snapshot", "destroy", "resize"],
                **extra,
            ),
        )

    def _disk(self, vm: str, sr: str, position: int, state: str, **vdi_extra: Any) -> str:
        label = self.db.tables["VM"][vm]["name_label"]
        vdi = self._vdi(
            sr, f"{label} disk {position}", self.rng.choice((10, 20, 40)) * GiB, **vdi_extra
        )
        attached = state in ("Running", "Paused")
        self.add(
            "VBD",
            _rec(
                "VBD",
                uuid=fast_uuid(),
                VM=vm,
                VDI=vdi,
                device=f"xvd{'abcdefgh'[position]}",
                userdevice=str(position),
                bootable=position == 0,
                mode="RW",
                type="Disk",
                storage_lock=False,
                empty=False,
                other_config={},
                currently_attached=attached,
                status_code=0,
                status_detail="",
                runtime_properties={},
                qos_algorithm_type="",
                qos_algorithm_params={},
                qos_supported_algorithms=[],
                allowed_operations=["unplug", "unplug_force"] if attached else ["attach"],
            ),
        )
        return vdi

    def _vif(self, vm: str, network: str, state: str, device: str = "0") -> str:
        attached = state in ("Running", "Paused")
        return self.add(
            "VIF",
            _rec(
                "VIF",
                uuid=fast_uuid(),
                device=device,
                network=network,
                VM=vm,
                MAC=_mac(self.rng),
                MTU=1500,
                other_config={},
                currently_attached=attached,
                status_code=0,
                status_detail="",
                runtime_properties={},
                qos_algorithm_type="",
                qos_algorithm_params={},
                qos_supported_algorithms=[],
                MAC_autogenerated=True,
                allowed_operations=["unplug"] if attached else ["attach", "plug"],
            ),
        )

    def _snapshot(self, vm: str) -> None:
        source = self.db.tables["VM"][vm]
        stamp = datetime_at(self.now - 86400)
        snap = self._vm(
            f"{source['name_label']} (snapshot)",
            "Halted",
            NULL_REF,
            memory=source["memory_static_max"],
            vcpus=source["VCPUs_max"],
            is_a_template=True,
            extra={"is_a_snapshot": True, "snapshot_of": vm, "snapshot_time": stamp},
        )
        sr = self.shared_sr
        self._disk(snap, sr, 0, "Halted", is_a_snapshot=True, snapshot_time=stamp)


def build_pool(db: Database, config: SimConfig) -> Builder:
    # No GC tuning here: the builder runs inside tests and the demo daemon, where a process-wide
    # change (disabled GC, a frozen heap) is not its to make. xod/runtime.py owns those.
    builder = Builder(db, config)
    builder.build()
    return builder
