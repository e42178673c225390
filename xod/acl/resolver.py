"""Whether a permission map grants a permission on an object, through XO's inheritance: a port
of xo-acl-resolver (the module xo-server and xo-web both use), with its exact semantics.

Per object type, the permission is granted when the object itself is granted ("self") and/or
when one of the objects it links to is, recursively and with the same permission:

    host, network, VM-template   self OR $pool
    SR, VM                       self OR $container   (SR: pool if shared, else its host;
                                                       VM: its host while resident, else pool)
    VM-snapshot                  self OR $snapshot_of
    VM-controller                $container
    VDI                          $SR OR the VM of any of its $VBDs
    VDI-snapshot                 $snapshot_of
    VBD                          VDI
    VIF                          $network OR $VM
    PIF, PCI                     $host
    PBD                          host OR SR
    PUSB                         host;  VUSB: vm;  USB_group: every PUSBs member (and one at least)
    message                      $object
    task                         $host
    any other type (pool, ...)   self

An unknown object is never granted. A link to the object itself is not followed (the pool's
`$pool` is the pool). There is no inheritance from a VM to its disks' SR, nor from a VDI to a VM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Grants = Mapping[str, frozenset[str]]
GetObject = Callable[[str], Mapping[str, Any] | None]

# Per object type, the fields whose target's permission the object inherits: when the target's
# permission changes, the objects linking to it may change too. `$VBDs` (VDI) goes one step
# further: through each VBD's `VM`.
LINK_FIELDS: dict[str, tuple[str, ...]] = {
    "host": ("$pool",),
    "network": ("$pool",),
    "VM-template": ("$pool",),
    "SR": ("$container",),
    "VM": ("$container",),
    "VM-controller": ("$container",),
    "VM-snapshot": ("$snapshot_of",),
    "VDI": ("$SR", "$VBDs"),
    "VDI-snapshot": ("$snapshot_of",),
    "VBD": ("VDI",),
    "VIF": ("$network", "$VM"),
    "PIF": ("$host",),
    "PCI": ("$host",),
    "PBD": ("host", "SR"),
    "PUSB": ("host",),
    "VUSB": ("vm",),
    "USB_group": ("PUSBs",),
    "message": ("$object",),
    "task": ("$host",),
}

Rule = Callable[[Grants, GetObject, Mapping[str, Any], str], bool]


def check(grants: Grants, get_object: GetObject, object_id: str, permission: str) -> bool:
    """True if `grants` gives `permission` on `object_id` (directly or by inheritance)."""
    # Without any grant nothing is granted: the common case of a user without ACLs is free.
    return bool(grants) and _authorized(grants, get_object, object_id, permission)


def _authorized(grants: Grants, get: GetObject, object_id: Any, permission: str) -> bool:
    obj = get(object_id) if isinstance(object_id, str) else None
    if obj is None:
        return False
    return _RULES.get(obj.get("type"), _self)(grants, get, obj, permission)


def _self(grants: Grants, get: GetObject, obj: Mapping[str, Any], permission: str) -> bool:
    granted = grants.get(obj.get("id"))  # type: ignore[arg-type]
    return granted is not None and permission in granted


def _members(*names: str, self_too: bool = False) -> Rule:
    """Granted through any of the `names` links (not one to the object itself), and through
    the object's own grants when `self_too`."""

    def rule(grants: Grants, get: GetObject, obj: Mapping[str, Any], permission: str) -> bool:
        if self_too and _self(grants, get, obj, permission):
            return True
        own_id = obj.get("id")
        for name in names:
            target = obj.get(name)
            if target != own_id and _authorized(grants, get, target, permission):
                return True
        return False

    return rule


def _vdi(grants: Grants, get: GetObject, vdi: Mapping[str, Any], permission: str) -> bool:
    """Its SR, or the VM of any VBD it is attached through."""
    if _authorized(grants, get, vdi.get("$SR"), permission):
        return True
    for vbd_id in vdi.get("$VBDs") or ():
        vbd = get(vbd_id)
        if vbd is not None and _authorized(grants, get, vbd.get("VM"), permission):
            return True
    return False


def _usb_group(grants: Grants, get: GetObject, group: Mapping[str, Any], permission: str) -> bool:
    """Every one of its PUSBs (and one at least)."""
    members = group.get("PUSBs") or ()
    return len(members) > 0 and all(_authorized(grants, get, m, permission) for m in members)


_RULES: dict[Any, Rule] = {
    "host": _members("$pool", self_too=True),
    "network": _members("$pool", self_too=True),
    "VM-template": _members("$pool", self_too=True),
    "SR": _members("$container", self_too=True),
    "VM": _members("$container", self_too=True),
    "VM-snapshot": _members("$snapshot_of", self_too=True),
    "VM-controller": _members("$container"),
    "VDI": _vdi,
    "VDI-snapshot": _members("$snapshot_of"),
    "VBD": _members("VDI"),
    "VIF": _members("$network", "$VM"),
    "PIF": _members("$host"),
    "PCI": _members("$host"),
    "PBD": _members("host", "SR"),
    "PUSB": _members("host"),
    "VUSB": _members("vm"),
    "USB_group": _usb_group,
    "message": _members("$object"),
    "task": _members("$host"),
}
