"""The XAPI classes the cache follows, the order they are transformed in, their XO types."""

from __future__ import annotations

# XAPI classes the cache fetches (wire names, as in `<class>.get_all_records`).
SYNCED_CLASSES: tuple[str, ...] = (
    "pool",
    "host",
    "host_metrics",
    "VM",
    "VM_metrics",
    "VM_guest_metrics",
    "SR",
    "PBD",
    "VDI",
    "VBD",
    "VIF",
    "network",
    "PIF",
    "task",
    "message",
    "Certificate",
)
# Classes that make no XO object of their own: their fields are folded into a parent (metrics.py).
METRICS_CLASSES = ("host_metrics", "vm_metrics", "vm_guest_metrics", "certificate")
# Order in which one batch is transformed (lower-case event class names): a transform may read the
# XO objects of the classes before it (pool → master host, network → its bond master PIF, SR →
# its first PBD, halted VM → its VBDs/VDIs/SRs, VM.current_operations → tasks).
OBJECT_CLASSES = (
    "task",
    "host",
    "pool",
    "pif",
    "network",
    "pbd",
    "sr",
    "vdi",
    "vbd",
    "vif",
    "vm",
    "message",
)

# The XO object types of each class's objects.
XO_TYPES: dict[str, tuple[str, ...]] = {
    "task": ("task",),
    "host": ("host",),
    "pool": ("pool",),
    "network": ("network",),
    "pif": ("PIF",),
    "pbd": ("PBD",),
    "sr": ("SR",),
    "vdi": ("VDI", "VDI-snapshot", "VDI-unmanaged"),
    "vbd": ("VBD",),
    "vif": ("VIF",),
    "vm": ("VM", "VM-controller", "VM-snapshot", "VM-template"),
    "message": ("message",),
}
