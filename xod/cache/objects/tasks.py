"""Transforms of the task and message classes."""

from __future__ import annotations

from sys import intern
from typing import TYPE_CHECKING, Any

from xod.cache.objects.values import XoObject, as_list, as_map, to_number, to_timestamp

if TYPE_CHECKING:
    from xod.cache.objects.pool import PoolObjects


def task_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    other = as_map(r.get("other_config"))
    applies_to = other.get("applies_to")
    progress = r.get("progress", 0)
    progress = to_number(progress) if progress is not None else None
    obj: XoObject = {
        "type": "task",
        "allowedOperations": as_list(r.get("allowed_operations")),
        "created": to_timestamp(r.get("created")),
        "current_operations": as_map(r.get("current_operations")),
        "finished": to_timestamp(r.get("finished")),
        "name_description": r.get("name_description", ""),
        "name_label": r.get("name_label", ""),
        "progress": progress,
        "result": r.get("result", ""),
        "status": intern(r.get("status", "pending")),
        "xapiRef": ref,
        "applies_to": pool.link(applies_to) if applies_to else None,
        "$host": pool.link(r.get("resident_on")),
    }
    pool.add_common_fields(obj, ref, object_id, r)
    return obj


def message_object(pool: PoolObjects, ref: str, r: dict[str, Any], object_id: str) -> XoObject:
    obj: XoObject = {
        "type": "message",
        "body": r.get("body", ""),
        "name": r.get("name", ""),
        "time": to_timestamp(r.get("timestamp")),
        "$object": r.get("obj_uuid"),
    }
    pool.add_common_fields(obj, ref, object_id, r)
    return obj
