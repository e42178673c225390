"""The inheritance resolver, row by row of XO's table (xod/acl/resolver.py's docstring), on a
small object graph shaped as the cache builds it."""

from __future__ import annotations

from typing import Any

import pytest

from xod.acl.resolver import LINK_FIELDS, Grants, check
from xod.acl.roles import ROLES, grants_from, permission_map, role_list

_OBJECTS: list[dict[str, Any]] = [
    {"id": "pool", "type": "pool", "$pool": "pool"},
    {"id": "host", "type": "host", "$pool": "pool"},
    {"id": "other-host", "type": "host", "$pool": "other-pool"},
    {"id": "net", "type": "network", "$pool": "pool"},
    {"id": "shared-sr", "type": "SR", "$container": "pool"},
    {"id": "local-sr", "type": "SR", "$container": "host"},
    {"id": "running", "type": "VM", "$container": "host", "$pool": "pool"},
    {"id": "halted", "type": "VM", "$container": "pool", "$pool": "pool"},
    {"id": "tpl", "type": "VM-template", "$container": "pool", "$pool": "pool"},
    {"id": "snap", "type": "VM-snapshot", "$snapshot_of": "running", "$pool": "pool"},
    {"id": "dom0", "type": "VM-controller", "$container": "host", "$pool": "pool"},
    {"id": "vdi", "type": "VDI", "$SR": "shared-sr", "$VBDs": ["vbd"]},
    {"id": "lone-vdi", "type": "VDI", "$SR": "local-sr", "$VBDs": ["vbd-gone"]},
    {"id": "vdi-snap", "type": "VDI-snapshot", "$snapshot_of": "vdi", "$SR": "shared-sr"},
    {"id": "vbd", "type": "VBD", "VDI": "vdi", "VM": "halted"},
    {"id": "vif", "type": "VIF", "$network": "net", "$VM": "halted"},
    {"id": "pif", "type": "PIF", "$host": "host"},
    {"id": "pci", "type": "PCI", "$host": "host"},
    {"id": "pbd", "type": "PBD", "host": "host", "SR": "shared-sr"},
    {"id": "pusb", "type": "PUSB", "host": "host"},
    {"id": "pusb2", "type": "PUSB", "host": "other-host"},
    {"id": "vusb", "type": "VUSB", "vm": "running"},
    {"id": "usb-group", "type": "USB_group", "PUSBs": ["pusb"]},
    {"id": "usb-group-2", "type": "USB_group", "PUSBs": ["pusb", "pusb2"]},
    {"id": "usb-empty", "type": "USB_group", "PUSBs": []},
    {"id": "msg", "type": "message", "$object": "halted"},
    {"id": "task", "type": "task", "$host": "host"},
    {"id": "self-ref-host", "type": "host", "$pool": "self-ref-host"},
]
OBJECTS: dict[str, dict[str, Any]] = {obj["id"]: obj for obj in _OBJECTS}


def can(grants: dict[str, set[str]], object_id: str, permission: str = "view") -> bool:
    frozen: Grants = {key: frozenset(value) for key, value in grants.items()}
    return check(frozen, OBJECTS.get, object_id, permission)


# (object, the grant that gives it, the grant that does not) per row of the table.
ROWS = [
    ("pool", "pool", "host"),  # default: self only
    ("host", "host", "net"),
    ("host", "pool", "net"),
    ("net", "net", "host"),
    ("net", "pool", "host"),
    ("shared-sr", "shared-sr", "host"),
    ("shared-sr", "pool", "host"),
    ("local-sr", "host", "shared-sr"),
    ("running", "running", "halted"),
    ("running", "host", "net"),
    ("running", "pool", "net"),  # through its host's $pool
    ("halted", "pool", "host"),
    ("tpl", "tpl", "host"),
    ("tpl", "pool", "host"),
    ("snap", "snap", "halted"),
    ("snap", "running", "halted"),
    ("dom0", "host", "dom0"),  # no self
    ("vdi", "shared-sr", "local-sr"),
    ("vdi", "halted", "running"),  # through the VBD's VM
    ("vdi-snap", "shared-sr", "vdi-snap"),  # no self; through its VDI's SR
    ("vdi-snap", "halted", "vdi-snap"),  # through its VDI's VM
    ("vbd", "shared-sr", "vbd"),  # no self; through VDI
    ("vbd", "halted", "vbd"),  # through VDI's VBD → VM
    ("vif", "net", "vif"),
    ("vif", "halted", "vif"),
    ("pif", "host", "pif"),
    ("pci", "host", "pci"),
    ("pbd", "host", "pbd"),
    ("pbd", "shared-sr", "pbd"),
    ("pusb", "host", "pusb"),
    ("vusb", "running", "vusb"),
    ("usb-group", "host", "usb-group"),
    ("msg", "halted", "msg"),
    ("task", "host", "task"),
]


@pytest.mark.parametrize(("object_id", "granted", "not_granted"), ROWS)
def test_each_row_of_the_inheritance_table(object_id: str, granted: str, not_granted: str) -> None:
    assert can({granted: {"view"}}, object_id)
    assert not can({not_granted: {"view"}}, object_id)
    assert not can({}, object_id)


def test_the_same_permission_is_required_all_the_way_up() -> None:
    grants = {"pool": {"view"}}
    assert can(grants, "vbd", "view")
    assert not can(grants, "vbd", "operate")
    assert can({"host": {"view", "operate"}}, "running", "operate")
    # operate on a host: VMs running on it only.
    assert not can({"host": {"view", "operate"}}, "halted", "operate")


def test_unknown_objects_and_dangling_links_are_never_granted() -> None:
    assert not can({"nope": {"view"}}, "nope")
    # A VDI whose VBD is gone: only its SR counts.
    assert not can({"running": {"view"}}, "lone-vdi")
    assert can({"host": {"view"}}, "lone-vdi")


def test_a_link_to_the_object_itself_is_not_followed() -> None:
    assert not can({}, "self-ref-host")
    assert can({"self-ref-host": {"view"}}, "self-ref-host")
    # The pool's $pool is the pool: granted by its own ACL only.
    assert can({"pool": {"view"}}, "pool") and not can({}, "pool")


def test_a_usb_group_needs_every_member_and_at_least_one() -> None:
    assert not can({"host": {"view"}}, "usb-group-2")
    assert can({"host": {"view"}, "other-host": {"view"}}, "usb-group-2")
    assert not can({"host": {"view"}}, "usb-empty")


def test_types_without_self_ignore_their_own_acls() -> None:
    for object_id in ("vdi", "vdi-snap", "vbd", "dom0", "msg", "task", "pif"):
        assert not can({object_id: {"view"}}, object_id)


def test_no_inheritance_from_a_vm_to_its_disks_sr_nor_from_a_vdi_to_its_vm() -> None:
    assert not can({"halted": {"view"}}, "shared-sr")
    assert not can({"vdi": {"view"}}, "halted")


def test_link_fields_name_the_fields_the_resolver_follows() -> None:
    # Every type with inheritance is listed, with fields its objects carry here.
    for obj in OBJECTS.values():
        for field in LINK_FIELDS.get(obj["type"], ()):
            assert field in obj, (obj["id"], field)
    assert "pool" not in LINK_FIELDS
    assert LINK_FIELDS["VDI"] == ("$SR", "$VBDs")
    assert LINK_FIELDS["VM"] == ("$container",)


def test_roles_and_grants() -> None:
    assert ROLES == {
        "viewer": ("view",),
        "operator": ("view", "operate"),
        "admin": ("view", "operate", "administrate"),
    }
    assert role_list() == [
        {"id": "viewer", "name": "Viewer", "permissions": ["view"]},
        {"id": "operator", "name": "Operator", "permissions": ["view", "operate"]},
        {"id": "admin", "name": "Admin", "permissions": ["view", "operate", "administrate"]},
    ]
    # A legacy raw permission as the action grants that permission alone; ACLs on one object
    # add up.
    grants = grants_from([("vm", "viewer"), ("vm", "operate"), ("pool", "admin")])
    assert grants == {
        "vm": frozenset({"view", "operate"}),
        "pool": frozenset({"view", "operate", "administrate"}),
    }
    assert permission_map(grants) == {
        "vm": {"operate": 1, "view": 1},
        "pool": {"administrate": 1, "operate": 1, "view": 1},
    }
