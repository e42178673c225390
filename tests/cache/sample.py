"""A small hand-built pool of full XAPI records (every field, datamodel defaults) for pure tests."""

from __future__ import annotations

import uuid as uuid_module
from typing import Any

from xod.sim.schema import new_record

NULL = "OpaqueRef:NULL"


def _ref(name: str) -> str:
    return f"OpaqueRef:{uuid_module.uuid5(uuid_module.NAMESPACE_URL, name)}"


def _uuid(name: str) -> str:
    return str(uuid_module.uuid5(uuid_module.NAMESPACE_DNS, name))


class SamplePool:
    """Records by wire class name → ref → record, with refs/uuids derived from readable names."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {}

    def ref(self, name: str) -> str:
        return _ref(name)

    def uuid(self, name: str) -> str:
        return _uuid(name)

    def add(self, xapi_class: str, key: str, /, **fields: Any) -> str:
        ref = _ref(key)
        fields.setdefault("uuid", _uuid(key))
        record = new_record(xapi_class)
        record.update(fields)
        self.records.setdefault(xapi_class, {})[ref] = record
        return ref

    def record(self, cls: str, name: str) -> dict[str, Any]:
        return self.records[cls][_ref(name)]

    def event(self, cls: str, name: str, operation: str = "mod") -> dict[str, Any]:
        event: dict[str, Any] = {"class": cls.lower(), "operation": operation, "ref": _ref(name)}
        if operation != "del":
            event["snapshot"] = dict(self.record(cls, name))
        return event


def build_sample_pool() -> SamplePool:
    p = SamplePool()
    r = p.ref
    p.add(
        "pool",
        "pool",
        name_label="",
        master=r("host0"),
        default_SR=r("sr-shared"),
        cpu_info={"cpu_count": "8", "socket_count": "2"},
        other_config={"auto_poweron": "true"},
    )
    for i in range(2):
        p.add(
            "host",
            f"host{i}",
            name_label=f"host-{i}",
            hostname=f"xcp{i}",
            address=f"127.0.0.{i + 1}",
            enabled=True,
            metrics=r(f"host{i}-metrics"),
            control_domain=r(f"dom0-{i}"),
            resident_VMs=[r(f"dom0-{i}")] + ([r("vm-running")] if i == 0 else []),
            PIFs=[r(f"pif{i}")],
            PBDs=[r(f"pbd-shared-{i}")] + ([r("pbd-local")] if i == 1 else []),
            cpu_info={"cpu_count": "4", "socket_count": "1"},
            software_version={
                "product_version": "8.2.1",
                "product_brand": "XCP-ng",
                "build_number": "release/yangtze",
                "platform_version": "3.2.1",
            },
            other_config={"boot_time": "1700000000.0", "agent_start_time": "1700000100."},
            tags=["rack-a"],
        )
        p.add(
            "host_metrics",
            f"host{i}-metrics",
            memory_total=str(16 * 1024**3 - 123),  # as XML-RPC sends ints
            memory_free=4 * 1024**3,
            live=True,
            last_updated="20240101T00:00:00Z",
        )
        p.add(
            "VM",
            f"dom0-{i}",
            name_label=f"Control domain on host: host-{i}",
            is_control_domain=True,
            power_state="Running",
            resident_on=r(f"host{i}"),
            VCPUs_max=4,
            VCPUs_at_startup=4,
            memory_static_max=4 * 1024**3,
            memory_dynamic_max=4 * 1024**3,
            domid=0,
        )
        p.add(
            "PIF",
            f"pif{i}",
            device="eth0",
            network=r("net0"),
            host=r(f"host{i}"),
            MAC=f"aa:bb:cc:00:00:0{i}",
            MTU="1500",
            VLAN=-1,
            management=True,
            physical=True,
            IP=f"127.0.0.{i + 1}",
            ip_configuration_mode="Static",
        )
        p.add(
            "PBD",
            f"pbd-shared-{i}",
            host=r(f"host{i}"),
            SR=r("sr-shared"),
            device_config={"server": "nfs", "password": "hunter2"},
            currently_attached=True,
        )
    p.add(
        "PBD", "pbd-local", host=r("host1"), SR=r("sr-local"), device_config={"device": "/dev/sda"}
    )
    p.add(
        "network",
        "net0",
        name_label="Pool-wide network",
        bridge="xenbr0",
        MTU=1500,
        PIFs=[r("pif0"), r("pif1")],
        VIFs=[r("vif-running")],
        purpose=["nbd"],
    )
    p.add(
        "SR",
        "sr-shared",
        name_label="NFS",
        type="nfs",
        content_type="user",
        shared=True,
        physical_size="1099511627776",
        physical_utilisation=1024**3,
        virtual_allocation=2 * 1024**3,
        VDIs=[r("vdi-running")],
        PBDs=[r("pbd-shared-0"), r("pbd-shared-1")],
    )
    p.add(
        "SR",
        "sr-local",
        name_label="Local storage",
        type="lvm",
        content_type="user",
        shared=False,
        physical_size=500 * 1024**3,
        VDIs=[r("vdi-halted"), r("vdi-snap")],
        PBDs=[r("pbd-local")],
    )
    p.add(
        "VM",
        "vm-running",
        name_label="web-01",
        power_state="Running",
        resident_on=r("host0"),
        affinity=r("host0"),
        VCPUs_max="4",
        VCPUs_at_startup="2",
        memory_static_min=str(1024**3),
        memory_static_max=str(4 * 1024**3),
        memory_dynamic_min=str(2 * 1024**3),
        memory_dynamic_max=str(2 * 1024**3),
        metrics=r("vm-running-metrics"),
        guest_metrics=r("vm-running-guest"),
        VBDs=[r("vbd-running")],
        VIFs=[r("vif-running")],
        snapshots=[r("vm-snap")],
        HVM_boot_policy="BIOS order",
        HVM_boot_params={"order": "cd"},
        domain_type="hvm",
        platform={"videoram": "8", "cores-per-socket": "2"},
        tags=["prod"],
        start_delay="0",
        other_config={"auto_poweron": "false"},
    )
    p.add(
        "VM_metrics",
        "vm-running-metrics",
        VCPUs_number="2",
        memory_actual=str(2 * 1024**3),
        start_time="20240102T03:04:05Z",
        install_time="19700101T00:00:00Z",
    )
    p.add(
        "VM_guest_metrics",
        "vm-running-guest",
        os_version={"name": "Debian GNU/Linux 12", "distro": "debian", "major": "12"},
        PV_drivers_version={"major": "7", "minor": "30", "micro": "0", "build": "1"},
        PV_drivers_up_to_date=True,
        PV_drivers_detected=True,
        networks={"0/ip": "10.0.0.5", "0/ipv6/0": "fe80::1"},
        other={"feature-static-ip-setting": "1"},
    )
    p.add(
        "VDI",
        "vdi-running",
        name_label="web-01 disk",
        SR=r("sr-shared"),
        VBDs=[r("vbd-running")],
        virtual_size="10737418240",
        physical_utilisation=1024**3,
        type="user",
        managed=True,
        snapshots=[r("vdi-snap")],
    )
    p.add(
        "VBD",
        "vbd-running",
        VM=r("vm-running"),
        VDI=r("vdi-running"),
        device="xvda",
        userdevice="0",
        bootable=True,
        mode="RW",
        type="Disk",
        currently_attached=True,
    )
    p.add(
        "VIF",
        "vif-running",
        VM=r("vm-running"),
        network=r("net0"),
        device="0",
        MAC="de:ad:be:ef:00:01",
        MTU="1500",
        currently_attached=True,
        qos_algorithm_type="ratelimit",
        qos_algorithm_params={"kbps": "100"},
    )
    p.add(
        "VM",
        "vm-halted",
        name_label="db-01",
        power_state="Halted",
        VCPUs_max=2,
        VCPUs_at_startup=2,
        memory_static_max=1024**3,
        memory_dynamic_max=1024**3,
        VBDs=[r("vbd-halted")],
        metrics=r("vm-halted-metrics"),
        PV_args="console=hvc0",
    )
    p.add("VM_metrics", "vm-halted-metrics", VCPUs_number=0, memory_actual=0)
    p.add(
        "VDI",
        "vdi-halted",
        name_label="db-01 disk",
        SR=r("sr-local"),
        VBDs=[r("vbd-halted")],
        virtual_size=8 * 1024**3,
        type="user",
        managed=True,
    )
    p.add(
        "VBD",
        "vbd-halted",
        VM=r("vm-halted"),
        VDI=r("vdi-halted"),
        device="",
        userdevice="0",
        mode="RW",
        type="Disk",
    )
    p.add(
        "VM",
        "vm-snap",
        name_label="web-01 snapshot",
        is_a_snapshot=True,
        is_a_template=True,
        snapshot_of=r("vm-running"),
        snapshot_time="20240103T00:00:00Z",
        power_state="Halted",
        VCPUs_max=4,
        VCPUs_at_startup=2,
    )
    p.add(
        "VDI",
        "vdi-snap",
        name_label="web-01 disk snapshot",
        SR=r("sr-local"),
        is_a_snapshot=True,
        snapshot_of=r("vdi-running"),
        snapshot_time="20240103T00:00:00Z",
        virtual_size=10 * 1024**3,
        type="user",
        managed=True,
    )
    p.add(
        "VM",
        "tpl-debian",
        name_label="Debian Bookworm 12",
        is_a_template=True,
        is_default_template=True,
        power_state="Halted",
        VCPUs_max=1,
        VCPUs_at_startup=1,
        memory_static_max=2 * 1024**3,
        memory_dynamic_max=2 * 1024**3,
        HVM_boot_policy="BIOS order",
        other_config={
            "install-methods": "cdrom,nfs,http",
            "disks": '<provision><disk device="0" size="10737418240" sr="" bootable="true"'
            ' type="system"/></provision>',
        },
    )
    p.add(
        "task",
        "task0",
        name_label="VM.start",
        status="pending",
        progress=0.5,
        created="20240104T00:00:00Z",
        finished="19700101T00:00:00Z",
        resident_on=r("host0"),
        other_config={"applies_to": r("vm-running")},
    )
    p.add(
        "message",
        "msg0",
        name="ALARM",
        priority=3,
        cls="VM",
        obj_uuid=p.uuid("vm-running"),
        timestamp="20240105T00:00:00Z",
        body="cpu_usage high",
    )
    return p
