"""XO's API errors (the codes of xo-common/api-errors.js) and how any exception becomes a JSON-RPC error object.

Pure: no I/O. `ApiError.to_json()` keeps XO's member order (`message, code, data`); the
generic JSON-RPC errors use `code, message, data` as json-rpc-protocol does.
"""

from __future__ import annotations

from typing import Any

from xod.xapi.errors import TransportError, XapiError

_UNSET: Any = object()


class ApiError(Exception):
    """An error a client is meant to see, with XO's numeric code and optional `data`."""

    def __init__(self, code: int, message: str, data: Any = _UNSET, *, xo_order: bool = True):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.xo_order = xo_order

    def to_json(self) -> dict[str, Any]:
        if self.xo_order:
            error: dict[str, Any] = {"message": self.message, "code": self.code}
        else:
            error = {"code": self.code, "message": self.message}
        if self.data is not _UNSET:
            error["data"] = self.data
        return error


# -- JSON-RPC protocol errors ------------------------------------------------------------------


def parse_error() -> ApiError:
    return ApiError(-32700, "invalid JSON", xo_order=False)


def invalid_request(reason: str = "invalid JSON-RPC request") -> ApiError:
    return ApiError(-32600, reason, xo_order=False)


def method_not_found(method: str) -> ApiError:
    return ApiError(-32601, f"method not found: {method}", method, xo_order=False)


def unknown_error(message: str = "unknown error from the peer", data: Any = _UNSET) -> ApiError:
    return ApiError(-32000, message, data, xo_order=False)


# -- XO errors (packages/xo-common/api-errors.js) ----------------------------------------------


def not_implemented() -> ApiError:
    return ApiError(0, "not implemented")


def no_such_object(object_id: Any, object_type: Any = None) -> ApiError:
    label = object_type if isinstance(object_type, str) else "object"
    return ApiError(1, f"no such {label} {object_id}", {"id": object_id, "type": object_type})


def unauthorized(permission: str | None = None, object_id: Any = None) -> ApiError:
    obj = {} if object_id is None else {"id": object_id}
    return ApiError(2, "not enough permissions", {"permission": permission, "object": obj})


def invalid_credentials() -> ApiError:
    return ApiError(3, "invalid credentials")


def forbidden_operation(operation: str, reason: str | None = None) -> ApiError:
    return ApiError(
        5, f"forbidden operation: {operation}", {"operation": operation, "reason": reason}
    )


def no_hosts_available() -> ApiError:
    return ApiError(7, "no hosts available")


def authentication_failed() -> ApiError:
    return ApiError(8, "authentication failed")


def server_unreachable(object_id: Any = None) -> ApiError:
    return ApiError(9, "server unreachable", {"objectId": object_id})


def invalid_parameters(errors: list[dict[str, Any]], message: str = "invalid parameters"):
    return ApiError(10, message, {"errors": errors})


def invalid_parameter(
    path: str,
    keyword: str,
    message: str,
    params: dict[str, Any] | None = None,
    schema_path: str = "",
) -> ApiError:
    """An `invalid parameters` error with one Ajv-shaped entry (xo-cli prints instancePath +
    message), for the checks a JSON Schema cannot express."""
    entry = {
        "instancePath": path,
        "schemaPath": schema_path,
        "keyword": keyword,
        "params": {} if params is None else params,
        "message": message,
    }
    return invalid_parameters([entry])


def object_already_exists(object_id: Any, object_type: str) -> ApiError:
    return ApiError(
        16, f"{object_type} already exists", {"objectId": object_id, "objectType": object_type}
    )


def incorrect_state(actual: Any, expected: Any, object_id: Any, prop: str) -> ApiError:
    return ApiError(
        25,
        "incorrect state",
        {"actual": actual, "expected": expected, "object": object_id, "property": prop},
    )


# -- XAPI errors → XO errors (xo-server's XAPI_ERROR_TO_XO_ERROR) ------------------------------


def _first(params: list[str]) -> str | None:
    return params[0] if params else None


def _vm_bad_power_state(p: list[str]) -> ApiError:
    # VM_BAD_POWER_STATE(vm, expected, actual)
    vm, expected, actual = [*p, None, None, None][:3]
    return ApiError(
        13,
        f"VM state is {actual} but should be {expected}",
        {"objectId": vm, "expected": expected, "actual": actual},
    )


def _vm_lacks_feature(p: list[str]) -> ApiError:
    feature = p[1] if len(p) > 1 else None
    return ApiError(14, f"VM lacks feature {feature}", {"objectId": _first(p), "feature": feature})


XAPI_ERROR_TO_XO_ERROR: dict[str, Any] = {
    "EHOSTUNREACH": lambda p: server_unreachable(_first(p)),
    # Not in XO's table: its objects are resolved before any call, so a stale handle only
    # happens when the object vanished meanwhile — which is exactly XO's noSuchObject.
    "HANDLE_INVALID": lambda p: no_such_object(p[1] if len(p) > 1 else None, _first(p)),
    "HOST_OFFLINE": lambda p: ApiError(18, "host offline", {"objectId": _first(p)}),
    "NO_HOSTS_AVAILABLE": lambda p: no_hosts_available(),
    "NOT_SUPPORTED_DURING_UPGRADE": lambda p: ApiError(15, "not supported during upgrade"),
    "OPERATION_BLOCKED": lambda p: ApiError(
        19, "operation blocked", {"objectId": _first(p), "code": p[1] if len(p) > 1 else None}
    ),
    "PATCH_PRECHECK_FAILED_ISO_MOUNTED": lambda p: ApiError(
        20, "patch precheck failed: isoMounted", {"objectId": _first(p), "errorType": "isoMounted"}
    ),
    "PIF_VLAN_EXISTS": lambda p: object_already_exists(_first(p), "PIF"),
    "SESSION_AUTHENTICATION_FAILED": lambda p: authentication_failed(),
    "VDI_IN_USE": lambda p: ApiError(
        17, "VDI in use", {"objectId": _first(p), "operation": p[1] if len(p) > 1 else None}
    ),
    "VM_BAD_POWER_STATE": _vm_bad_power_state,
    "VM_IS_TEMPLATE": lambda p: ApiError(12, "VM is a template", {"objectId": _first(p)}),
    "VM_LACKS_FEATURE": _vm_lacks_feature,
    "VM_LACKS_FEATURE_SHUTDOWN": _vm_lacks_feature,
    "VM_MISSING_PV_DRIVERS": lambda p: ApiError(11, "missing PV drivers", {"objectId": _first(p)}),
}


def from_xapi(error: XapiError, translate_ref: Any = None) -> ApiError | None:
    """The XO error for an XAPI failure, or None when XO has no mapping for its code.

    `translate_ref(ref) -> id | None` turns OpaqueRefs in the params into XO ids, as XO does.
    """
    convert = XAPI_ERROR_TO_XO_ERROR.get(error.code)
    if convert is None:
        return None
    params = list(error.params)
    if translate_ref is not None:
        params = [(translate_ref(p) or p) if p.startswith("OpaqueRef:") else p for p in params]
    return convert(params)


def to_error_object(error: BaseException, *, is_admin: bool) -> dict[str, Any]:
    """The `error` member for any exception a handler raised (xo-server's pipeline step 12)."""
    if isinstance(error, ApiError):
        return error.to_json()
    if isinstance(error, XapiError):
        mapped = from_xapi(error)
        if mapped is not None:
            return mapped.to_json()
    elif isinstance(error, TransportError):
        return server_unreachable(getattr(error, "url", None)).to_json()
    if not is_admin:
        return unknown_error().to_json()
    data: dict[str, Any] = {"name": type(error).__name__, "message": str(error)}
    if isinstance(error, XapiError):
        data["code"] = error.code
        data["params"] = error.params
    return unknown_error(str(error) or type(error).__name__, data).to_json()
