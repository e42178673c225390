"""One pool's XO objects, kept up to date from full loads and event batches.

`PoolObjects` holds the XO objects and the little the transforms need (ref → id, metrics
fragments and parent links, host platform versions), never the raw XAPI records: those are
dropped as soon as they are transformed. The per-class transforms live in hosts.py, vms.py,
storage.py, networks.py and tasks.py; they build one XO object from one record, reading this
pool's links and already-transformed objects.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

from xod.cache.objects import hosts, networks, storage, tasks, vms
from xod.cache.objects.classes import METRICS_CLASSES, OBJECT_CLASSES, XO_TYPES
from xod.cache.objects.metrics import MetricsLinks
from xod.cache.objects.sharing import compact
from xod.cache.objects.values import EMPTY_LIST, Changes, XoObject
from xod.cache.records import decode_id_fields, decode_record

Transform = Callable[["PoolObjects", str, dict[str, Any], str], XoObject]
# One class's (ref, record or None) pairs, as a full sync or an event batch brings them.
_Items = TypeVar("_Items", bound=Collection[tuple[str, Any]])

_TRANSFORMS: dict[str, Transform] = {
    "pool": hosts.pool_object,
    "host": hosts.host_object,
    "vm": vms.vm_object,
    "sr": storage.sr_object,
    "pbd": storage.pbd_object,
    "pif": networks.pif_object,
    "vdi": storage.vdi_object,
    "vbd": storage.vbd_object,
    "vif": networks.vif_object,
    "network": networks.network_object,
    "message": tasks.message_object,
    "task": tasks.task_object,
}


class PoolObjects:
    """The XO objects of one pool, kept up to date from full loads and event batches."""

    def __init__(self) -> None:
        self.pool_id: str | None = None
        self.pool_ref: str | None = None
        self.objects: dict[str, XoObject] = {}
        self.metrics = MetricsLinks()
        # host ref → its platform version (the pool object shows its master's).
        self.host_platform: dict[str, str | None] = {}
        self._ref_to_id: dict[str, str] = {}
        # Objects per class: their refs are found by a scan when needed (rarely), as a set of
        # refs per class would cost ~40 bytes per object.
        self._counts: dict[str, int] = dict.fromkeys(OBJECT_CLASSES, 0)

    def clear(self) -> None:
        """Forget every object and link (before a full load)."""
        self.pool_id = self.pool_ref = None
        self.objects.clear()
        self.metrics.clear()
        self.host_platform.clear()
        self._ref_to_id.clear()
        self._counts = dict.fromkeys(OBJECT_CLASSES, 0)

    # -- queries -------------------------------------------------------------------------------

    def id_of(self, ref: str) -> str | None:
        return self._ref_to_id.get(ref)

    def count(self, event_class: str) -> int:
        """Objects held for a lower-case class name (compared with valid_ref_counts)."""
        event_class = event_class.lower()
        fragments = self.metrics.fragments.get(event_class)
        if fragments is not None:
            return len(fragments)
        return self._counts.get(event_class, 0)

    def refs(self, event_class: str) -> set[str]:
        event_class = event_class.lower()
        fragments = self.metrics.fragments.get(event_class)
        if fragments is not None:
            return set(fragments)
        types = XO_TYPES.get(event_class, ())
        return {obj["_xapiRef"] for obj in self.objects.values() if obj["type"] in types}

    def host_addresses(self) -> list[str]:
        return [
            obj["address"]
            for obj in self.objects.values()
            if obj["type"] == "host" and obj["address"]
        ]

    # -- entry points --------------------------------------------------------------------------

    def load(
        self, records_by_class: Mapping[str, Mapping[str, Any]], *, consume: bool = False
    ) -> dict[str, XoObject]:
        """Full (re)sync: forget everything, transform every record; returns id → object.

        A record may still be raw JSON (`msgspec.Raw`, see records.RAW_RECORDS_TYPE): it is
        decoded when the transform reaches it. `consume` empties `records_by_class` (a dict) so
        that each class's records, if the caller keeps no other reference, are freed as soon as
        they are transformed: a cold sync then never holds every raw answer and every object."""
        self.clear()
        grouped = {cls.lower(): records.items() for cls, records in records_by_class.items()}
        if consume:
            records_by_class.clear()  # type: ignore[attr-defined]  # consume: a dict, see above
        self._process(grouped)
        return dict(self.objects)

    def apply(self, events: Iterable[Mapping[str, Any]]) -> Changes:
        """One event.from reply's events → net changes (id → new object, or None for an exit)."""
        grouped: dict[str, list[tuple[str, dict[str, Any] | None]]] = {}
        for event in events:
            snapshot = None if event["operation"] == "del" else event.get("snapshot")
            if snapshot is None and event["operation"] != "del":
                continue
            grouped.setdefault(event["class"].lower(), []).append((event["ref"], snapshot))
        return self._process(grouped)

    def reload_class(self, cls: str, records: Mapping[str, Any]) -> Changes:
        """Replace every object of one class by a fresh `get_all_records` (count mismatch);
        records may be raw JSON, as in `load`."""
        event_class = cls.lower()
        gone = self.refs(event_class) - records.keys()
        items: list[tuple[str, Any]] = [(ref, None) for ref in gone]
        items.extend(records.items())
        return self._process({event_class: items})

    # -- the batch pipeline --------------------------------------------------------------------

    def _process(self, grouped: dict[str, _Items]) -> Changes:
        changes: Changes = {}
        ref_to_id = self._ref_to_id

        for ref, record in grouped.get("pool", ()):
            if record is not None:
                self.pool_id = decode_id_fields("pool", record)["uuid"]
                self.pool_ref = ref

        # Ids first, so links to objects added in the same batch resolve.
        previous_ids: dict[str, str] = {}
        for cls in OBJECT_CLASSES:
            for ref, record in grouped.get(cls, ()):
                if record is None:
                    continue
                new_id = self._id_for(cls, ref, decode_id_fields(cls, record))
                old_id = ref_to_id.get(ref)
                if old_id is not None and old_id != new_id:
                    previous_ids[ref] = old_id
                ref_to_id[ref] = new_id

        touched_parents: set[str] = set()
        # Each class leaves `grouped` once processed: records nobody else holds are freed early.
        for cls in METRICS_CLASSES:
            items = grouped.pop(cls, None)
            if items:
                self.metrics.update(cls, items, touched_parents)

        objects = self.objects
        for cls in OBJECT_CLASSES:
            items = grouped.pop(cls, None)
            if not items:
                continue
            transform = _TRANSFORMS[cls]
            count = self._counts[cls]
            for ref, record in items:
                touched_parents.discard(ref)
                if record is None:
                    object_id = ref_to_id.pop(ref, None)
                    self._forget_links(cls, ref)
                    if object_id is not None and objects.pop(object_id, None) is not None:
                        changes[object_id] = None
                        count -= 1
                    continue
                object_id = ref_to_id[ref]
                old_id = previous_ids.get(ref)
                if old_id is not None and objects.pop(old_id, None) is not None:
                    changes[old_id] = None
                    count -= 1
                obj = compact(transform(self, ref, decode_record(cls, record), object_id))
                if object_id not in objects:
                    count += 1
                objects[object_id] = obj
                changes[object_id] = obj
            self._counts[cls] = count

        for parent_ref in touched_parents:
            object_id = ref_to_id.get(parent_ref)
            old = objects.get(object_id) if object_id is not None else None
            if object_id is None or old is None:
                continue
            obj = self.metrics.repatch(parent_ref, old)
            objects[object_id] = obj
            changes[object_id] = obj
        return changes

    def _id_for(self, cls: str, ref: str, record: Mapping[str, Any]) -> str:
        uuid = record.get("uuid") or ref
        if (
            cls == "vm"
            and record.get("is_a_template")
            and not record.get("is_a_snapshot")
            and not record.get("is_control_domain")
            and vms.is_default_template(record)
        ):
            return f"{self.pool_id}-{uuid}"
        return uuid

    def _forget_links(self, cls: str, ref: str) -> None:
        self.metrics.forget(cls, ref)
        if cls == "host":
            self.host_platform.pop(ref, None)

    # -- for the transforms --------------------------------------------------------------------

    def link(self, ref: str | None) -> str | None:
        """The id of the object a ref field points to (None: no such object)."""
        return self._ref_to_id.get(ref) if ref else None

    def links(self, refs: list[str] | None) -> list[str]:
        """The ids of the objects a ref-list field points to, unknown ones left out."""
        if not refs:
            return EMPTY_LIST
        get = self._ref_to_id.get
        # The copy is sized exactly; a comprehension's list has room for more (88 bytes, not 64,
        # for one id).
        return [i for i in map(get, refs) if i is not None][:]

    def add_common_fields(
        self, obj: XoObject, ref: str, object_id: str, record: Mapping[str, Any]
    ) -> None:
        """The fields every XO object has (id, uuid, pool, XAPI ref), added last."""
        obj["id"] = object_id
        uuid = record.get("uuid", object_id)
        # The id is the uuid, already kept: don't keep a second copy of it.
        obj["uuid"] = object_id if uuid == object_id else uuid
        obj["$pool"] = self.pool_id
        obj["$poolId"] = self.pool_id
        obj["_xapiRef"] = ref


def transform_pool(
    records_by_class: Mapping[str, Mapping[str, dict[str, Any]]],
) -> dict[str, XoObject]:
    """The XO objects of one pool's full record set (what a fresh sync must produce)."""
    return PoolObjects().load(records_by_class)
