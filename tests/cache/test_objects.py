"""XAPI record → XO object: the shapes xod serves (those of xo-server's XAPI-to-XO transform)."""

from __future__ import annotations

import copy

import orjson

from tests.cache.sample import build_sample_pool
from xod.cache.objects import PoolObjects, shared_map, to_timestamp, transform_pool


def _by_name(objects: dict, name: str) -> dict:
    return next(o for o in objects.values() if o.get("name_label") == name)


def _walk_numbers(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_numbers(v, f"{path}[{i}]")
    elif isinstance(value, float):
        yield path, value


def test_types_ids_and_pool_fields():
    p = build_sample_pool()
    objects = transform_pool(p.records)
    pool_id = p.uuid("pool")
    types = sorted(o["type"] for o in objects.values())
    assert types.count("VM") == 2
    assert types.count("VM-controller") == 2
    assert types.count("VM-snapshot") == 1
    assert types.count("VM-template") == 1
    assert {
        "host",
        "pool",
        "SR",
        "PBD",
        "PIF",
        "network",
        "VDI",
        "VDI-snapshot",
        "VBD",
        "VIF",
        "task",
        "message",
    } <= set(types)
    # Metrics are folded into their parents, never objects of their own.
    assert len(objects) == sum(
        len(records) for cls, records in p.records.items() if not cls.endswith("metrics")
    )
    for object_id, obj in objects.items():
        assert obj["id"] == object_id
        assert obj["$pool"] == pool_id and obj["$poolId"] == pool_id
        assert obj["_xapiRef"].startswith("OpaqueRef:")
    template = _by_name(objects, "Debian Bookworm 12")
    assert template["id"] == f"{pool_id}-{p.uuid('tpl-debian')}"
    assert template["uuid"] == p.uuid("tpl-debian")
    assert template["isDefaultTemplate"] is True
    assert template["template_info"]["install_methods"] == ["cdrom", "nfs", "http"]
    assert template["template_info"]["disks"][0]["size"] == 10737418240
    pool = objects[pool_id]
    assert pool["name_label"] == "host-0"  # empty pool name falls back to the master's
    assert pool["master"] == p.uuid("host0")
    assert pool["default_SR"] == p.uuid("sr-shared")
    assert pool["cpus"] == {"cores": 8, "sockets": 2}


def test_vm_fields_clients_depend_on():
    p = build_sample_pool()
    objects = transform_pool(p.records)
    vm = objects[p.uuid("vm-running")]
    # Ansible's inventory keys
    for key in (
        "name_label",
        "mainIpAddress",
        "power_state",
        "$poolId",
        "$container",
        "type",
        "tags",
        "managementAgentDetected",
        "os_version",
    ):
        assert key in vm
    assert vm["CPUs"] == {"max": 4, "number": 2}
    assert vm["memory"] == {
        "dynamic": [2 * 1024**3, 2 * 1024**3],
        "static": [1024**3, 4 * 1024**3],
        "size": 2 * 1024**3,
    }
    assert vm["addresses"] == {"0/ipv4/0": "10.0.0.5", "0/ipv6/0": "fe80::1"}
    assert vm["mainIpAddress"] == "10.0.0.5"
    assert vm["os_version"]["distro"] == "debian"
    assert vm["managementAgentDetected"] is True and vm["pvDriversVersion"] == "7.30.0-1"
    assert vm["$container"] == p.uuid("host0")
    assert vm["$VBDs"] == [p.uuid("vbd-running")] and vm["VIFs"] == [p.uuid("vif-running")]
    assert vm["snapshots"] == [p.uuid("vm-snap")]
    assert vm["affinityHost"] == p.uuid("host0")
    assert vm["virtualizationMode"] == "hvm" and vm["videoram"] == "8"
    assert vm["coresPerSocket"] == 2 and vm["startDelay"] == 0
    assert vm["startTime"] == 1704164645 and vm["installTime"] is None
    halted = objects[p.uuid("vm-halted")]
    # Halted with a disk on a local SR: its container is that SR's host.
    assert halted["$container"] == p.uuid("host1")
    assert halted["memory"]["size"] == 1024**3 and halted["PV_args"] == "console=hvc0"
    # What XO leaves out on a halted VM is absent, not null.
    assert "mainIpAddress" not in halted and "managementAgentDetected" not in halted
    snapshot = objects[p.uuid("vm-snap")]
    assert snapshot["$snapshot_of"] == p.uuid("vm-running")
    assert snapshot["snapshot_time"] == 1704240000
    assert snapshot["$container"] == p.uuid("pool")


def test_host_and_other_classes():
    p = build_sample_pool()
    objects = transform_pool(p.records)
    host = objects[p.uuid("host0")]
    for key in (
        "uuid",
        "name_label",
        "$poolId",
        "enabled",
        "hostname",
        "memory",
        "address",
        "cpus",
        "tags",
        "version",
        "power_state",
        "productBrand",
    ):
        assert key in host
    assert host["memory"] == {"usage": 12 * 1024**3, "size": 16 * 1024**3}
    assert host["power_state"] == "Running" and host["version"] == "8.2.1"
    assert host["residentVms"] == [p.uuid("dom0-0"), p.uuid("vm-running")]
    assert host["controlDomain"] == p.uuid("dom0-0")
    assert host["startTime"] == 1700000000
    shared = objects[p.uuid("sr-shared")]
    assert shared["$container"] == p.uuid("pool") and shared["size"] == 1099511627776
    assert objects[p.uuid("sr-local")]["$container"] == p.uuid("host1")
    pbd = objects[p.uuid("pbd-shared-0")]
    assert pbd["device_config"] == {"server": "nfs", "password": "* obfuscated *"}
    vbd = objects[p.uuid("vbd-running")]
    assert vbd["position"] == "0" and vbd["device"] == "xvda"
    assert vbd["VM"] == p.uuid("vm-running") and vbd["VDI"] == p.uuid("vdi-running")
    assert objects[p.uuid("vbd-halted")]["device"] is None
    vif = objects[p.uuid("vif-running")]
    assert vif["MTU"] == 1500 and vif["rateLimit"] == 100 and vif["device"] == "0"
    assert objects[p.uuid("vdi-snap")]["type"] == "VDI-snapshot"
    assert objects[p.uuid("vdi-running")]["size"] == 10737418240
    pif = objects[p.uuid("pif0")]
    assert pif["vlan"] == -1 and pif["mtu"] == 1500 and pif["$host"] == p.uuid("host0")
    network = objects[p.uuid("net0")]
    assert network["nbd"] is True and network["PIFs"] == [p.uuid("pif0"), p.uuid("pif1")]
    task = objects[p.uuid("task0")]
    assert task["progress"] == 0.5 and task["finished"] is None
    assert task["applies_to"] == p.uuid("vm-running") and task["$host"] == p.uuid("host0")
    message = objects[p.uuid("msg0")]
    assert message["$object"] == p.uuid("vm-running") and message["time"] == 1704412800


def test_integers_are_json_integers_whatever_the_transport():
    p = build_sample_pool()
    as_json = transform_pool(p.records)
    # XML-RPC: every int arrives as a string.
    xmlrpc_records = copy.deepcopy(p.records)
    for records in xmlrpc_records.values():
        for record in records.values():
            for key, value in record.items():
                if type(value) is int:
                    record[key] = str(value)
    as_xmlrpc = transform_pool(xmlrpc_records)
    assert as_xmlrpc == as_json
    floats = [
        (path, v) for obj in as_json.values() for path, v in _walk_numbers(obj) if v.is_integer()
    ]
    assert floats == []
    encoded = orjson.loads(orjson.dumps(as_json))
    assert isinstance(encoded[p.uuid("vm-running")]["memory"]["static"][1], int)


def test_timestamps():
    assert to_timestamp("19700101T00:00:00Z") is None
    assert to_timestamp("20240101T00:00:00Z") == 1704067200
    assert to_timestamp("1700000000.5") == 1700000000
    assert to_timestamp("") is None and to_timestamp("garbage") is None


def test_metrics_change_reemits_the_whole_parent():
    p = build_sample_pool()
    objects = PoolObjects()
    before = objects.load(p.records)[p.uuid("vm-running")]
    p.record("VM_guest_metrics", "vm-running-guest")["networks"] = {"0/ip": "10.0.0.9"}
    changes = objects.apply([p.event("VM_guest_metrics", "vm-running-guest")])
    assert list(changes) == [p.uuid("vm-running")]
    after = changes[p.uuid("vm-running")]
    assert after["mainIpAddress"] == "10.0.0.9"
    assert after["addresses"] == {"0/ipv4/0": "10.0.0.9"}
    assert {k: v for k, v in after.items() if k not in ("addresses", "mainIpAddress")} == {
        k: v for k, v in before.items() if k not in ("addresses", "mainIpAddress")
    }
    # host metrics → host power state and memory
    p.record("host_metrics", "host1-metrics")["live"] = False
    changes = objects.apply([p.event("host_metrics", "host1-metrics")])
    assert changes[p.uuid("host1")]["power_state"] == "Halted"
    # The incremental result equals a fresh transform.
    assert objects.objects == transform_pool(p.records)


def test_parent_and_metrics_in_one_batch_and_same_batch_refs():
    p = build_sample_pool()
    objects = PoolObjects()
    objects.load(p.records)
    r = p.ref
    # A new VM with its metrics, VBD and VDI, all in one batch (the VM event first).
    p.add("VM_metrics", "new-metrics", VCPUs_number=1, memory_actual=1024**3)
    p.add(
        "VDI",
        "new-vdi",
        SR=r("sr-shared"),
        VBDs=[r("new-vbd")],
        virtual_size=1024**3,
        managed=True,
        type="user",
    )
    p.add("VBD", "new-vbd", VM=r("new-vm"), VDI=r("new-vdi"), userdevice="0", type="Disk")
    p.add(
        "VM",
        "new-vm",
        name_label="new",
        power_state="Halted",
        VBDs=[r("new-vbd")],
        metrics=r("new-metrics"),
        VCPUs_max=1,
        VCPUs_at_startup=1,
    )
    events = [
        p.event("VM", "new-vm", "add"),
        p.event("VBD", "new-vbd", "add"),
        p.event("VDI", "new-vdi", "add"),
        p.event("VM_metrics", "new-metrics", "add"),
    ]
    changes = objects.apply(events)
    vm = changes[p.uuid("new-vm")]
    assert vm["$VBDs"] == [p.uuid("new-vbd")]
    assert changes[p.uuid("new-vbd")]["VM"] == p.uuid("new-vm")
    assert changes[p.uuid("new-vdi")]["$VBDs"] == [p.uuid("new-vbd")]
    assert vm["$container"] == p.uuid("pool")  # its disk is on a shared SR
    assert objects.objects == transform_pool(p.records)


def test_delete_exits_and_template_conversion_changes_id():
    p = build_sample_pool()
    objects = PoolObjects()
    objects.load(p.records)
    del p.records["VIF"][p.ref("vif-running")]
    # XAPI keeps reverse references: the VM and the network change with the VIF.
    p.record("VM", "vm-running")["VIFs"] = []
    p.record("network", "net0")["VIFs"] = []
    events = [
        p.event("VIF", "vif-running", "del"),
        p.event("VM", "vm-running"),
        p.event("network", "net0"),
    ]
    changes = objects.apply(events)
    assert changes[p.uuid("vif-running")] is None
    assert changes[p.uuid("vm-running")]["VIFs"] == []
    assert objects.objects == transform_pool(p.records)
    assert objects.id_of(p.ref("vif-running")) is None
    # A VM turned into a default template gets the pool-scoped id: old id exits, new one enters.
    record = p.record("VM", "vm-halted")
    record.update(is_a_template=True, other_config={"default_template": "true"})
    changes = objects.apply([p.event("VM", "vm-halted")])
    new_id = f"{p.uuid('pool')}-{p.uuid('vm-halted')}"
    assert changes[p.uuid("vm-halted")] is None
    assert changes[new_id]["type"] == "VM-template"
    assert objects.id_of(p.ref("vm-halted")) == new_id
    # The counts compared with XAPI's valid_ref_counts follow deletions and id changes.
    for cls in ("VM", "VIF", "network", "VBD"):
        assert objects.count(cls) == len(objects.refs(cls)) == len(p.records[cls])


def test_vm_current_operations_use_task_ids():
    p = build_sample_pool()
    objects = PoolObjects()
    objects.load(p.records)
    p.add("task", "task1", name_label="Async.VM.clean_shutdown", status="pending")
    p.record("VM", "vm-running")["current_operations"] = {
        p.ref("task1"): "clean_shutdown",
        "OpaqueRef:unknown": "start",
    }
    changes = objects.apply([p.event("VM", "vm-running"), p.event("task", "task1", "add")])
    assert changes[p.uuid("vm-running")]["current_operations"] == {
        p.uuid("task1"): "clean_shutdown"
    }


def test_reload_class_and_counts():
    p = build_sample_pool()
    objects = PoolObjects()
    objects.load(p.records)
    assert objects.count("task") == 1 and objects.count("vm") == 6
    assert objects.count("vm_metrics") == 2
    tasks = {p.add("task", "task9", name_label="x", status="success"): None}
    fresh = {ref: p.records["task"][ref] for ref in tasks}  # task0 is gone, task9 is new
    changes = objects.reload_class("task", fresh)
    assert changes[p.uuid("task0")] is None
    assert changes[p.uuid("task9")]["name_label"] == "x"
    assert objects.count("task") == 1
    assert sorted(objects.host_addresses()) == ["127.0.0.1", "127.0.0.2"]


def test_equal_values_are_held_once_and_objects_stay_plain_dicts():
    p = build_sample_pool()
    twin = copy.deepcopy(p.record("VM", "vm-running"))
    twin.update(uuid="7e57-twin", name_label="twin", VBDs=[], VIFs=[], snapshots=[],
                metrics="OpaqueRef:NULL", guest_metrics="OpaqueRef:NULL")  # fmt: skip
    p.records["VM"]["OpaqueRef:twin"] = twin
    objects = transform_pool(p.records)
    vm, other = objects[p.uuid("vm-running")], objects["7e57-twin"]
    # Equal maps and lists from different records are one object (objects are immutable).
    assert vm["boot"] == {"order": "cd"} and vm["boot"] is other["boot"]
    assert vm["tags"] is other["tags"]
    assert vm["memory"]["static"] is other["memory"]["static"]
    # Only values with the same JSON are merged.
    assert shared_map({"x": 1}) is shared_map({"x": 1})
    assert shared_map({"x": True}) is not shared_map({"x": 1})
    assert orjson.dumps(shared_map({"x": True})) == b'{"x":true}'
    # Small objects live in key-sharing dicts: still plain dicts, same keys in the same order.
    vbd = objects[p.uuid("vbd-running")]
    assert type(vbd) is dict and orjson.dumps(vbd) == orjson.dumps(dict(vbd))
    assert list(vbd)[:2] == ["type", "attached"] and list(vbd)[-1] == "_xapiRef"
