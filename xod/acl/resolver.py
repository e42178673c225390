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

# Types granted by their own ACLs too (the others only through their links).
_SELF_TOO = frozenset({"host", "network", "VM-template", "SR", "VM", "VM-snapshot"})


def check(grants: Grants, get_object: GetObject, object_id: str, permission: str) -> bool:
    """True if `grants` gives `permission` on `object_id` (directly or by inheritance)."""
    return _Resolver(grants, get_object).authorized(object_id, permission)


class _Resolver:
    __slots__ = ("_get", "_grants")

    def __init__(self, grants: Grants, get_object: GetObject) -> None:
        self._grants = grants
        self._get = get_object

    def authorized(self, object_id: Any, permission: str) -> bool:
        obj = self._get(object_id) if isinstance(object_id, str) else None
        if obj is None:
            return False
        object_type = obj.get("type")
        links = LINK_FIELDS.get(object_type) if isinstance(object_type, str) else None
        if links is None:
            return self._self(obj, permission)
        if object_type in _SELF_TOO and self._self(obj, permission):
            return True
        if object_type == "VDI":
            return self.authorized(obj.get("$SR"), permission) or any(
                self.authorized(vbd.get("VM"), permission)
                for vbd_id in obj.get("$VBDs") or ()
                if (vbd := self._get(vbd_id)) is not None
            )
        if object_type == "USB_group":
            members = obj.get("PUSBs") or ()
            return len(members) > 0 and all(self.authorized(m, permission) for m in members)
        return any(self._member(obj, name, permission) for name in links)

    def _self(self, obj: Mapping[str, Any], permission: str) -> bool:
        object_id = obj.get("id")
        granted = self._grants.get(object_id) if isinstance(object_id, str) else None
        return granted is not None and permission in granted

    def _member(self, obj: Mapping[str, Any], name: str, permission: str) -> bool:
        target = obj.get(name)
        return target != obj.get("id") and self.authorized(target, permission)
