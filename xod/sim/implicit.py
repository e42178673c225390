"""The implicit messages of every class (`datamodel_utils.ml messages_of_obj`): getters,
setters, map/set editors, get_all*, get_by_*, and the record constructors/destructors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xod.sim.dispatch import Call
from xod.sim.errors import XapiFailure
from xod.sim.registry import Registry, converter
from xod.sim.schema import CLASSES, ClassSpec, FieldSpec
from xod.sim.values import new_uuid
from xod.sim.where import compile_where

# Classes with implicit `create(record)` / `destroy(self)` (VM.destroy is a lifecycle message).
CONSTRUCTED = ("VM", "VDI", "VBD", "VIF", "network", "PBD")
# Classes without get_all / get_all_records / get_all_records_where.
_NO_GET_ALL = frozenset({"session"})
# Classes whose get_all* are custom (message store).
_CUSTOM_GET_ALL = frozenset({"message"})

# Hooks run after a generic create, e.g. VM.create also makes its VM_metrics.
CreateHook = Callable[[Call, str, dict[str, Any]], None]


def param_spec(spec: FieldSpec) -> str:
    if spec.kind == "ref":
        return f"ref:{spec.target}"
    if spec.kind == "enum":
        return f"enum:{spec.enum}"
    return spec.kind


def _value_converter(spec: FieldSpec) -> Callable[[Any], Any]:
    convert = converter(param_spec(spec))
    if spec.kind == "set" and spec.enum is not None:
        item = converter(f"enum:{spec.enum}")
        return lambda value: [item(v) for v in convert(value)]
    return convert


def register(registry: Registry, create_hooks: dict[str, CreateHook]) -> None:
    for cls in CLASSES.values():
        _register_class(registry, cls, create_hooks)


def _register_class(
    registry: Registry, cls: ClassSpec, create_hooks: dict[str, CreateHook]
) -> None:
    name = cls.name
    ref_spec = f"ref:{name}"

    def get_record(call: Call, ref: str) -> dict[str, Any]:
        return dict(call.pool.db.get(name, ref))

    def get_by_uuid(call: Call, uuid: str) -> str:
        return call.pool.db.by_uuid(name, uuid)

    registry.add(f"{name}.get_record", [("self", ref_spec)], get_record)
    registry.add(f"{name}.get_by_uuid", [("uuid", "string")], get_by_uuid)

    if "name_label" in cls.fields:

        def get_by_name_label(call: Call, label: str) -> list[str]:
            table = call.pool.db.tables[name]
            return [ref for ref, record in table.items() if record["name_label"] == label]

        registry.add(f"{name}.get_by_name_label", [("label", "string")], get_by_name_label)

    if name not in _NO_GET_ALL and name not in _CUSTOM_GET_ALL:

        def get_all(call: Call) -> list[str]:
            return list(call.pool.db.tables[name])

        def get_all_records(call: Call) -> dict[str, dict[str, Any]]:
            # The stored dicts themselves: the wire layer encodes them right away.
            return dict(call.pool.db.tables[name])

        def get_all_records_where(call: Call, expression: str) -> dict[str, dict[str, Any]]:
            predicate = compile_where(expression)
            return {
                ref: record
                for ref, record in call.pool.db.tables[name].items()
                if predicate(record)
            }

        def get_all_where(call: Call, expression: str) -> list[str]:
            return list(get_all_records_where(call, expression))

        registry.add(f"{name}.get_all", [], get_all)
        registry.add(f"{name}.get_all_records", [], get_all_records)
        registry.add(f"{name}.get_all_records_where", [("expr", "string")], get_all_records_where)
        registry.add(f"{name}.get_all_where", [("expr", "string")], get_all_where)

    for spec in cls.fields.values():
        _register_field(registry, name, spec)

    if name in CONSTRUCTED:
        _register_constructor(registry, cls, create_hooks.get(name))


def _register_field(registry: Registry, cls: str, spec: FieldSpec) -> None:
    fld = spec.name
    ref_spec = f"ref:{cls}"

    def getter(call: Call, ref: str) -> Any:
        return call.pool.db.get(cls, ref)[fld]

    registry.add(f"{cls}.get_{fld}", [("self", ref_spec)], getter)
    if spec.qualifier != "RW":
        return
    convert = _value_converter(spec)

    def setter(call: Call, ref: str, value: Any) -> str:
        call.pool.db.get(cls, ref)
        call.pool.db.update(cls, ref, {fld: convert(value)})
        return ""

    registry.add(f"{cls}.set_{fld}", [("self", ref_spec), ("value", "any")], setter)

    if spec.kind == "map":

        def add_to(call: Call, ref: str, key: str, value: Any) -> str:
            current = call.pool.db.get(cls, ref)[fld]
            if key in current:
                raise XapiFailure("MAP_DUPLICATE_KEY", cls, fld, ref, key)
            call.pool.db.update(cls, ref, {fld: {**current, key: value}})
            return ""

        def remove_from(call: Call, ref: str, key: str) -> str:
            current = call.pool.db.get(cls, ref)[fld]
            if key in current:
                call.pool.db.update(cls, ref, {fld: {k: v for k, v in current.items() if k != key}})
            return ""

        registry.add(
            f"{cls}.add_to_{fld}",
            [("self", ref_spec), ("key", "string"), ("value", "string")],
            add_to,
        )
        registry.add(
            f"{cls}.remove_from_{fld}", [("self", ref_spec), ("key", "string")], remove_from
        )
    elif spec.kind == "set":
        item_spec = f"enum:{spec.enum}" if spec.enum else "any"

        def add_item(call: Call, ref: str, value: Any) -> str:
            current = call.pool.db.get(cls, ref)[fld]
            if value not in current:
                call.pool.db.update(cls, ref, {fld: [*current, value]})
            return ""

        def remove_item(call: Call, ref: str, value: Any) -> str:
            current = call.pool.db.get(cls, ref)[fld]
            if value in current:
                call.pool.db.update(cls, ref, {fld: [v for v in current if v != value]})
            return ""

        registry.add(f"{cls}.add_{fld}", [("self", ref_spec), ("value", item_spec)], add_item)
        registry.add(f"{cls}.remove_{fld}", [("self", ref_spec), ("value", item_spec)], remove_item)


def _register_constructor(registry: Registry, cls: ClassSpec, hook: CreateHook | None) -> None:
    name = cls.name
    settable = {
        spec.name: (spec, _value_converter(spec))
        for spec in cls.fields.values()
        if spec.qualifier in ("RW", "RC")
    }
    required = [spec.name for spec, _ in settable.values() if not spec.has_default]

    def create(call: Call, args: dict[str, Any]) -> str:
        for fld in required:
            if fld not in args:
                raise XapiFailure("INTERNAL_ERROR", f"Field '{fld}' missing in {name} record")
        values: dict[str, Any] = {}
        for fld, value in args.items():
            entry = settable.get(fld)
            if entry is not None:
                values[fld] = entry[1](value)
        db = call.pool.db
        for fld, value in values.items():
            spec = settable[fld][0]
            if spec.kind == "ref" and spec.target in db.tables and value != "OpaqueRef:NULL":
                db.get(spec.target, value)
        record = {**cls.defaults, **values, "uuid": new_uuid()}
        ref = db.insert(name, record)
        if hook is not None:
            hook(call, ref, record)
        return ref

    def destroy(call: Call, ref: str) -> str:
        call.pool.db.get(name, ref)
        call.pool.db.delete(name, ref)
        return ""

    registry.add(f"{name}.create", [("args", "map")], create, async_capable=True)
    if name != "VM":
        registry.add(f"{name}.destroy", [("self", f"ref:{name}")], destroy, async_capable=True)
