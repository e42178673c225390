"""XAPI record → Xen Orchestra object (pure, no I/O).

One `PoolObjects` (pool.py) per pool turns `get_all_records` results and `event.from` events
into the objects xod serves through its API (the shapes xo-server's `xapi-object-to-xo` gives
them; tests/cache/test_objects.py pins them). The modules:

- values.py: XAPI values → XO values, the XO object types;
- sharing.py: memory savings (one copy of equal maps/lists, shared dict key tables);
- classes.py: the classes followed and their transform order;
- metrics.py: metrics records folded into their VM or host;
- pool.py: the per-pool bookkeeping and the batch pipeline;
- hosts.py, vms.py, storage.py, networks.py, tasks.py: one transform per XAPI class.
"""

from xod.cache.objects.classes import METRICS_CLASSES, OBJECT_CLASSES, SYNCED_CLASSES, XO_TYPES
from xod.cache.objects.pool import PoolObjects, transform_pool
from xod.cache.objects.sharing import compact, shared_list, shared_map
from xod.cache.objects.values import (
    EMPTY_LIST,
    EMPTY_MAP,
    Changes,
    XoObject,
    to_int,
    to_number,
    to_timestamp,
)

__all__ = [
    "EMPTY_LIST",
    "EMPTY_MAP",
    "METRICS_CLASSES",
    "OBJECT_CLASSES",
    "SYNCED_CLASSES",
    "XO_TYPES",
    "Changes",
    "PoolObjects",
    "XoObject",
    "compact",
    "shared_list",
    "shared_map",
    "to_int",
    "to_number",
    "to_timestamp",
    "transform_pool",
]
