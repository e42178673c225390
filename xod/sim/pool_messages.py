"""Explicit messages of session, system, task and message."""

from __future__ import annotations

from typing import Any

from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.registry import Registry
from xod.sim.schema import new_record
from xod.sim.values import new_uuid, now

# ---------------------------------------------------------------------------- session / system


def login_with_password(
    call: Call, uname: str, password: str, version: str, originator: str
) -> str:
    return call.pool.sessions.login(uname, password, originator, host=call.host, local=call.local)


def logout(call: Call) -> str:
    assert call.session is not None
    call.pool.sessions.remove(call.session)
    return ""


def list_methods(call: Call, *_: Any) -> list[str]:
    return call.pool.registry.wire_names()


def is_alive(call: Call, *args: Any) -> Any:
    return args[0] if args else True


# ---------------------------------------------------------------------------- task


def task_create(call: Call, label: str, description: str) -> str:
    return call.pool.tasks.create(label, call.host, description=description)


def task_cancel(call: Call, task: str) -> str:
    call.pool.db.get("task", task)
    call.pool.tasks.cancel(task, by=call.session or "")
    return ""


def task_destroy(call: Call, task: str) -> str:
    call.pool.tasks.destroy(task)
    return ""


def _client_task_update(call: Call, task: str, changes: dict[str, Any]) -> str:
    call.pool.db.get("task", task)
    call.pool.db.update("task", task, changes)
    return ""


def task_set_progress(call: Call, task: str, value: float) -> str:
    return _client_task_update(call, task, {"progress": value})


def task_set_status(call: Call, task: str, value: str) -> str:
    changes: dict[str, Any] = {"status": value}
    if value != "pending":
        changes["finished"] = now()
    return _client_task_update(call, task, changes)


def task_set_result(call: Call, task: str, value: str) -> str:
    return _client_task_update(call, task, {"result": value})


def task_set_error_info(call: Call, task: str, value: list[Any]) -> str:
    return _client_task_update(call, task, {"error_info": [str(v) for v in value]})


# ---------------------------------------------------------------------------- message


def message_create(call: Call, name: str, priority: int, cls: str, obj_uuid: str, body: str) -> str:
    target = {"VM": "VM", "Host": "host", "SR": "SR", "Pool": "pool", "VDI": "VDI"}.get(cls)
    if target is not None and obj_uuid not in call.pool.db.uuids[target]:
        raise XapiFailure("UUID_INVALID", cls, obj_uuid)
    record = new_record(
        "message",
        uuid=new_uuid(),
        name=name,
        priority=priority,
        cls=cls,
        obj_uuid=obj_uuid,
        timestamp=now(),
        body=body,
    )
    return call.pool.db.insert("message", record)


def message_destroy(call: Call, ref: str) -> str:
    call.pool.db.get("message", ref)
    call.pool.db.delete("message", ref)
    return ""


def message_get_all(call: Call) -> list[str]:
    return list(call.pool.db.tables["message"])


def message_get_all_records(call: Call) -> dict[str, dict[str, Any]]:
    return dict(call.pool.db.tables["message"])


def message_get_since(call: Call, since: str) -> dict[str, dict[str, Any]]:
    return {
        ref: record
        for ref, record in call.pool.db.tables["message"].items()
        if record["timestamp"] > since
    }


def message_get(call: Call, cls: str, obj_uuid: str, since: str) -> dict[str, dict[str, Any]]:
    return {
        ref: record
        for ref, record in call.pool.db.tables["message"].items()
        if record["cls"] == cls and record["obj_uuid"] == obj_uuid and record["timestamp"] > since
    }


def register(registry: Registry) -> None:
    add = registry.add
    add(
        "session.login_with_password",
        [
            ("uname", "string"),
            ("pwd", "string"),
            ("version", "string", "1.1"),
            ("originator", "string", ""),
        ],
        login_with_password,
        session=False,
    )
    add("session.logout", [], logout)
    add("session.local_logout", [], logout)
    add("system.listMethods", [], list_methods, session=False)
    add("system.isAlive", [("value", "any", "")], is_alive, session=False)
    add("task.create", [("label", "string"), ("description", "string")], task_create)
    add("task.cancel", [("task", "ref:task")], task_cancel, async_capable=True)
    add("task.destroy", [("self", "ref:task")], task_destroy)
    add("task.set_progress", [("self", "ref:task"), ("value", "float")], task_set_progress)
    add(
        "task.set_status",
        [("self", "ref:task"), ("value", "enum:task_status_type")],
        task_set_status,
    )
    add("task.set_result", [("self", "ref:task"), ("value", "string")], task_set_result)
    add("task.set_error_info", [("self", "ref:task"), ("value", "set")], task_set_error_info)
    add(
        "message.create",
        [
            ("name", "string"),
            ("priority", "int"),
            ("cls", "enum:cls"),
            ("obj_uuid", "string"),
            ("body", "string"),
        ],
        message_create,
    )
    add("message.destroy", [("self", "ref:message")], message_destroy)
    add("message.get_all", [], message_get_all)
    add("message.get_all_records", [], message_get_all_records)
    add("message.get_since", [("since", "datetime")], message_get_since)
    add(
        "message.get",
        [("cls", "enum:cls"), ("obj_uuid", "string"), ("since", "datetime")],
        message_get,
    )
