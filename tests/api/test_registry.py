"""Pure cores: XO schema dialect, Ajv-shaped errors, param normalisation, discovery, errors."""

from __future__ import annotations

import pytest

from xod.api import errors
from xod.api.dispatch import normalize_params
from xod.api.methods import build_registry
from xod.api.schema import ParamsValidator
from xod.xapi.errors import XapiError


def test_dialect_required_unless_optional_defaults_and_extras() -> None:
    validator = ParamsValidator(
        {
            "id": {"type": "string"},
            "force": {"type": "boolean", "optional": True},
            "delay": {"type": "number", "default": 0},
        }
    )
    params: dict = {"id": "x"}
    assert validator.validate(params) == []
    assert params == {"id": "x", "delay": 0}  # default injected
    assert validator.validate({}) == [
        {
            "instancePath": "",
            "schemaPath": "#/required",
            "keyword": "required",
            "params": {"missingProperty": "id"},
            "message": "must have required property 'id'",
        }
    ]
    extra = validator.validate({"id": "x", "bogus": 1, "other": 2})
    assert [e["params"] for e in extra] == [
        {"additionalProperty": "bogus"},
        {"additionalProperty": "other"},
    ]
    assert {e["message"] for e in extra} == {"must NOT have additional properties"}


def test_dialect_strings_non_empty_and_types() -> None:
    validator = ParamsValidator({"name": {"type": "string"}, "n": {"type": "number"}})
    problems = validator.validate({"name": "", "n": "3"})
    assert {(p["instancePath"], p["keyword"]) for p in problems} == {
        ("/name", "minLength"),
        ("/n", "type"),
    }
    assert next(p for p in problems if p["keyword"] == "type")["message"] == "must be number"


def test_wildcard_allows_extras_and_no_properties_allows_anything() -> None:
    assert (
        ParamsValidator({"a": {"type": "string"}, "*": {"type": "number"}}).validate(
            {"a": "x", "b": 1}
        )
        == []
    )
    assert ParamsValidator({}).validate({"anything": 1}) == []


def test_namespace_aliasing_and_ignorable_params() -> None:
    registry = build_registry()
    method = registry.get("server.enable")
    assert method is not None
    assert normalize_params(method, {"server": "abc"}) == {"id": "abc"}
    # An unknown `?` param is dropped, a known one renamed.
    assert normalize_params(method, {"id": "a", "newOption?": 1}) == {"id": "a"}
    add = registry.get("server.add")
    assert add is not None
    assert normalize_params(add, {"label?": "L"}) == {"label": "L"}
    with pytest.raises(errors.ApiError) as raised:
        normalize_params(add, {"label": "a", "label?": "b"})
    assert raised.value.code == 10


def test_methods_info_shapes() -> None:
    info = build_registry().methods_info()
    assert info["session.signIn"] == {"description": "sign in", "params": {}, "permission": None}
    assert info["server.enable"]["permission"] == "admin"
    assert info["server.enable"]["params"] == {"id": {"type": "string"}}
    # Any signed-in user: no `permission` key at all.
    assert "permission" not in info["xo.getAllObjects"]
    assert info["xo.getAllObjects"]["params"]["filter"]["optional"] is True
    assert info["system.getVersion"]["permission"] is None


def test_discovery_documents_are_built_once() -> None:
    registry = build_registry()
    # Anonymous clients may ask in a loop: the same document every time, not a rebuilt one.
    assert registry.methods_info() is registry.methods_info()
    assert registry.openrpc("1.0") is registry.openrpc("1.0")
    assert registry.openrpc("2.0")["info"]["version"] == "2.0"
    validator = registry.get("server.enable").validator
    assert validator is not None and validator.property_names is validator.property_names
    # The permission levels are declared in the schema (one check, advertised to clients).
    levels = ["none", "user", "read", "write", "admin"]
    assert registry.methods_info()["user.create"]["params"]["permission"]["enum"] == levels
    assert registry.methods_info()["user.set"]["params"]["permission"]["enum"] == levels


def test_one_invalid_parameter_is_ajv_shaped() -> None:
    error = errors.invalid_parameter("/expiresIn", "custom", "invalid duration 'x'")
    assert error.to_json() == {
        "message": "invalid parameters",
        "code": 10,
        "data": {
            "errors": [
                {
                    "instancePath": "/expiresIn",
                    "schemaPath": "",
                    "keyword": "custom",
                    "params": {},
                    "message": "invalid duration 'x'",
                }
            ]
        },
    }


def test_every_declared_method_has_a_handler() -> None:
    registry = build_registry()
    assert registry.undeclared() == []
    assert len(registry) >= 25


def test_openrpc_document_lists_every_method_with_json_schema() -> None:
    registry = build_registry()
    document = registry.openrpc("9.9")
    assert document["openrpc"].startswith("1.")
    by_name = {m["name"]: m for m in document["methods"]}
    assert set(by_name) == set(registry.names())
    enable_params = by_name["server.enable"]["params"]
    assert enable_params == [
        {"name": "id", "required": True, "schema": {"type": "string", "minLength": 1}}
    ]


def test_xapi_errors_map_to_xo_codes() -> None:
    bad_state = errors.from_xapi(
        XapiError("VM_BAD_POWER_STATE", ["OpaqueRef:1", "halted", "running"]),
        translate_ref=lambda ref: "uuid-1",
    )
    assert bad_state is not None
    assert bad_state.to_json() == {
        "message": "VM state is running but should be halted",
        "code": 13,
        "data": {"objectId": "uuid-1", "expected": "halted", "actual": "running"},
    }
    expected = {
        "HOST_OFFLINE": 18,
        "NO_HOSTS_AVAILABLE": 7,
        "VM_IS_TEMPLATE": 12,
        "VM_MISSING_PV_DRIVERS": 11,
        "VM_LACKS_FEATURE": 14,
        "VDI_IN_USE": 17,
        "SESSION_AUTHENTICATION_FAILED": 8,
        "OPERATION_BLOCKED": 19,
        "PIF_VLAN_EXISTS": 16,
    }
    for code, xo_code in expected.items():
        mapped = errors.from_xapi(XapiError(code, ["x", "y"]))
        assert mapped is not None and mapped.code == xo_code, code
    assert errors.from_xapi(XapiError("SR_FULL", [])) is None


def test_unknown_errors_hidden_from_non_admins() -> None:
    failure = RuntimeError("secret detail")
    assert errors.to_error_object(failure, is_admin=False) == {
        "code": -32000,
        "message": "unknown error from the peer",
    }
    admin_view = errors.to_error_object(failure, is_admin=True)
    assert admin_view["message"] == "secret detail"
    assert admin_view["data"]["name"] == "RuntimeError"
