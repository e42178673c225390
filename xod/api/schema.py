"""XO's parameter-schema dialect (xo-server's `params`) → JSON Schema, and Ajv-shaped validation.

Pure. The dialect: object properties are required unless `optional: true`; extra properties
are rejected when any property is declared, unless a `"*"` wildcard gives their schema; strings
are non-empty unless `minLength`/`format`/`pattern` says otherwise; `default` values are filled
in before validation (Ajv's `useDefaults`). Errors come out as Ajv 8 reports them, since xo-cli
prints `instancePath` + `message`.

Each schema is compiled twice: by fastjsonschema (Python code generated once, ≈1 µs per valid
call) and by jsonschema, which only runs on params found invalid, to list every error the way
Ajv does. Nothing about a call is remembered: params carry passwords and tokens.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import fastjsonschema
import jsonschema
import orjson

# xod/schemas links to the repository's schemas/ and is a real directory inside the wheel.
SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"

_DIALECT_ONLY = ("optional", "description")
# XAPI's integers are 64-bit: a bigger one (JSON carries them, as floats past 2**64, and schema
# validation counts 1e21 an integer) must be refused here, not fail in the XAPI call.
XAPI_INT_RANGE = (-(2**63), 2**63 - 1)


def _is_string_type(schema_type: object) -> bool:
    return schema_type == "string"


def to_json_schema(xo_schema: Mapping[str, Any]) -> dict[str, Any]:
    """Convert one XO-dialect schema node (recursively) to standard JSON Schema."""
    schema = {k: v for k, v in xo_schema.items() if k not in _DIALECT_ONLY}
    if _is_string_type(schema.get("type")) and not (
        "minLength" in schema or "format" in schema or "pattern" in schema or "enum" in schema
    ):
        schema["minLength"] = 1
    if schema.get("type") == "integer":
        schema.setdefault("minimum", XAPI_INT_RANGE[0])
        schema.setdefault("maximum", XAPI_INT_RANGE[1])
    properties = xo_schema.get("properties")
    if isinstance(properties, Mapping):
        schema.update(object_schema(properties))
        schema.setdefault("type", "object")
    items = xo_schema.get("items")
    if isinstance(items, Mapping):
        schema["items"] = to_json_schema(items)
    elif isinstance(items, list):
        schema["items"] = [to_json_schema(i) for i in items]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(xo_schema.get(key), list):
            schema[key] = [to_json_schema(s) for s in xo_schema[key]]
    if isinstance(xo_schema.get("additionalProperties"), Mapping):
        schema["additionalProperties"] = to_json_schema(xo_schema["additionalProperties"])
    return schema


def object_schema(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of an object whose properties are written in the XO dialect."""
    converted: dict[str, Any] = {}
    required: list[str] = []
    additional: Any = not properties
    for name, prop in properties.items():
        if name == "*":
            additional = to_json_schema(prop)
            continue
        converted[name] = to_json_schema(prop)
        if not prop.get("optional") and "default" not in prop:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": converted}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = additional
    return schema


def _apply_defaults(schema: Mapping[str, Any], instance: Any) -> None:
    if not isinstance(instance, dict):
        return
    for name, prop in schema.get("properties", {}).items():
        if name not in instance and "default" in prop:
            instance[name] = copy.deepcopy(prop["default"])
        if name in instance and "properties" in prop:
            _apply_defaults(prop, instance[name])


def _pointer(path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _ajv_errors(error: jsonschema.ValidationError) -> list[dict[str, Any]]:
    """One jsonschema error → the Ajv 8 error object(s) it stands for."""
    instance_path = _pointer(error.absolute_path)
    schema_path = "#" + _pointer(error.absolute_schema_path)
    keyword = error.validator
    # jsonschema types these as possibly `Unset` (errors built by hand); a validation sets them.
    value: Any = error.validator_value
    instance: Any = error.instance

    def one(params: dict[str, Any], message: str, path: str = schema_path) -> dict[str, Any]:
        return {
            "instancePath": instance_path,
            "schemaPath": path,
            "keyword": keyword,
            "params": params,
            "message": message,
        }

    if keyword == "required":
        missing = [p for p in value if isinstance(instance, dict) and p not in instance]
        name = next((p for p in missing if repr(p) in error.message), missing[:1] or [""])
        name = name if isinstance(name, str) else name[0]
        return [one({"missingProperty": name}, f"must have required property '{name}'")]
    if keyword == "additionalProperties":
        declared = cast(Mapping[str, Any], error.schema).get("properties", {})
        extras = [k for k in instance if k not in declared]
        return [
            one({"additionalProperty": k}, "must NOT have additional properties") for k in extras
        ]
    if keyword == "type":
        types = value if isinstance(value, list) else [value]
        joined = ",".join(types)
        return [one({"type": joined}, f"must be {joined}")]
    if keyword == "minLength":
        return [one({"limit": value}, f"must NOT have fewer than {value} characters")]
    if keyword == "maxLength":
        return [one({"limit": value}, f"must NOT have more than {value} characters")]
    if keyword == "enum":
        return [one({"allowedValues": value}, "must be equal to one of the allowed values")]
    if keyword in ("minimum", "maximum"):
        comparison = ">=" if keyword == "minimum" else "<="
        return [one({"comparison": comparison, "limit": value}, f"must be {comparison} {value}")]
    if keyword in ("anyOf", "oneOf"):
        which = "a schema in anyOf" if keyword == "anyOf" else "exactly one schema in oneOf"
        return [one({}, f"must match {which}")]
    return [one({}, error.message)]


class ParamsValidator:
    """A compiled XO-dialect `params` declaration."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params
        self.schema = object_schema(params)
        # Defaults are filled in by `_apply_defaults` (Ajv's way), not by the fast path.
        self._is_valid = fastjsonschema.compile(self.schema, use_default=False)
        self._validator = jsonschema.Draft7Validator(self.schema)
        self.property_names: frozenset[str] = frozenset(self.schema["properties"])
        self.allows_additional: bool = self.schema["additionalProperties"] is not False

    def validate(self, instance: dict[str, Any]) -> list[dict[str, Any]]:
        """Fill in defaults, then return the Ajv-shaped errors (empty when valid)."""
        _apply_defaults(self.schema, instance)
        try:
            self._is_valid(instance)
        except fastjsonschema.JsonSchemaException:
            pass
        else:
            return []
        errors: list[dict[str, Any]] = []
        for error in sorted(self._validator.iter_errors(instance), key=lambda e: e.path):
            errors.extend(_ajv_errors(error))
        return errors

    def rejects_as_extra(self, name: str) -> bool:
        return not self.allows_additional and name not in self.property_names


def load_namespace(namespace: str, directory: Path = SCHEMAS_DIR) -> dict[str, Any]:
    """`schemas/<namespace>.json`: `{"<method short name>": {"params": {…}}, …}`."""
    return cast(dict[str, Any], orjson.loads((directory / f"{namespace}.json").read_bytes()))
