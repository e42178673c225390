"""XO's API errors (the codes of xo-common/api-errors.js), every XAPI error an action can meet
turned into one of them, and how any exception becomes a JSON-RPC error object.

Pure: no I/O. `ApiError.to_json()` keeps XO's member order (`message, code, data`); the
generic JSON-RPC errors use `code, message, data` as json-rpc-protocol does.

XAPI errors → XO errors (`XAPI_ERROR_TO_XO_ERROR`; OpaqueRefs in the params become XO ids):

  as xo-server maps them:
    EHOSTUNREACH                      9  serverUnreachable        {objectId}
    HOST_OFFLINE                     18  hostOffline              {objectId}
    NO_HOSTS_AVAILABLE                7  noHostsAvailable         -
    NOT_SUPPORTED_DURING_UPGRADE     15  notSupportedDuringUpgrade -
    OPERATION_BLOCKED                19  operationBlocked         {objectId, code}
    PATCH_PRECHECK_FAILED_ISO_MOUNTED 20 patchPrecheckFailed      {objectId, errorType}
    PIF_VLAN_EXISTS                  16  objectAlreadyExists      {objectId, objectType}
    SESSION_AUTHENTICATION_FAILED     8  authenticationFailed     -
    VDI_IN_USE                       17  vdiInUse                 {objectId, operation}
    VM_BAD_POWER_STATE               13  vmBadPowerState          {objectId, expected, actual}
    VM_IS_TEMPLATE                   12  vmIsTemplate             {objectId}
    VM_LACKS_FEATURE(_SHUTDOWN)      14  vmLacksFeature           {objectId, feature}
    VM_MISSING_PV_DRIVERS            11  vmMissingPvDrivers       {objectId}

  xod's own (xo-server lets these through as -32000, opaque to non-admins):
    HANDLE_INVALID                    1  noSuchObject             {id, type}
    VM_LACKS_FEATURE_SUSPEND         14  vmLacksFeature           {objectId, feature}
    OPERATION_NOT_ALLOWED,            5  forbiddenOperation       {operation, reason}
      VM_IS_SNAPSHOT, PERMISSION_DENIED, RBAC_PERMISSION_DENIED
    INVALID_VALUE, VALUE_NOT_SUPPORTED, 10 invalidParameters      {errors: [Ajv-shaped entry]}
      FIELD_TYPE_ERROR, MAP_DUPLICATE_KEY
    HOST_DISABLED, HOST_NOT_DISABLED 25  incorrectState           {actual, expected, object,
    OTHER_OPERATION_IN_PROGRESS,                                   property}
      DEVICE_ALREADY_ATTACHED, DEVICE_ALREADY_DETACHED, HOST_IS_LIVE
    VLAN_TAG_INVALID,                10  invalidParameters        {errors: [Ajv-shaped entry]}
      INVALID_IP_ADDRESS_SPECIFIED
    MESSAGE_METHOD_UNKNOWN,           0  notImplemented           {code, method}
      MESSAGE_PARAMETER_COUNT_MISMATCH, MESSAGE_REMOVED  (the pool's xapi lacks the call)
    SESSION_INVALID                   9  serverUnreachable        {objectId} (no session ref)
    TASK_CANCELLED                   21  operationFailed          {objectId, code, task}
    any other code (HOST_IN_USE,     21  operationFailed          {objectId, code, params}
      HOST_NOT_ENOUGH_FREE_MEMORY, SR_FULL, VM_REQUIRES_SR, VM_INCOMPATIBLE_WITH_THIS_HOST,
      VM_REVERT_FAILED, INTERNAL_ERROR, ...)

so a client always gets a numbered code and the data to act on, never "unknown error from the
peer", for anything the pool refused.

What each action can meet (besides HANDLE_INVALID, SESSION_*, MESSAGE_*, PERMISSION_DENIED and
INTERNAL_ERROR, which any call can):
  vm.start/resume/unpause   VM_BAD_POWER_STATE, OPERATION_BLOCKED, OTHER_OPERATION_IN_PROGRESS,
                            NO_HOSTS_AVAILABLE, HOST_OFFLINE, HOST_DISABLED,
                            HOST_NOT_ENOUGH_FREE_MEMORY, VM_REQUIRES_SR, VM_IS_TEMPLATE
  vm.stop/restart/suspend/  the same power/operation errors, VM_LACKS_FEATURE(_SHUTDOWN/
    pause                   _SUSPEND), VM_MISSING_PV_DRIVERS, TASK_CANCELLED
  vm.clone/copy/snapshot/   VM_BAD_POWER_STATE, OPERATION_BLOCKED, OTHER_OPERATION_IN_PROGRESS,
    revert/delete           SR_FULL, VM_IS_SNAPSHOT, VM_REVERT_FAILED, OPERATION_NOT_ALLOWED,
                            VDI_IN_USE, TASK_CANCELLED
  vm.migrate                VM_BAD_POWER_STATE, HOST_OFFLINE, HOST_DISABLED, SR_FULL,
                            VM_INCOMPATIBLE_WITH_THIS_HOST, VM_REQUIRES_SR, VM_MISSING_PV_DRIVERS
  vm.set                    VM_BAD_POWER_STATE, VALUE_NOT_SUPPORTED, INVALID_VALUE
  host.*                    HOST_IN_USE, HOST_NOT_DISABLED, NO_HOSTS_AVAILABLE, HOST_OFFLINE
  vdi.delete                VDI_IN_USE, OTHER_OPERATION_IN_PROGRESS
  vif/vbd.connect/          DEVICE_ALREADY_ATTACHED/_DETACHED, VM_BAD_POWER_STATE,
    disconnect/delete       VBD_NOT_UNPLUGGABLE, OPERATION_NOT_ALLOWED (attached device)
  disk.create, vdi.set/     SR_FULL, VDI_TOO_SMALL, VDI_NEEDS_VM_FOR_MIGRATE (then copied)
    migrate
  network.*, pif.*          NETWORK_CONTAINS_VIF/_PIF, PIF_VLAN_EXISTS, VLAN_TAG_INVALID,
                            PIF_ALREADY_BONDED, PIF_BOND_NEEDS_MORE_MEMBERS,
                            PIF_IS_MANAGEMENT_INTERFACE, INVALID_IP_ADDRESS_SPECIFIED
  host.detach/forget        OPERATION_NOT_ALLOWED (the master), HOST_IN_USE, HOST_IS_LIVE
  sr.set/vdi.set/tag.*      INVALID_VALUE; task.* TASK_CANCELLED (task.wait)
Where the simulator produces them, tests/api/test_commands_errors.py checks the mapping end to
end; the table test there covers every entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


def unauthorized(
    permission: str | None = None, object_id: Any = None, object_type: str | None = None
) -> ApiError:
    obj: dict[str, Any] = {} if object_id is None else {"id": object_id}
    if object_type is not None:
        obj["type"] = object_type
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


def invalid_parameters(
    errors: list[dict[str, Any]], message: str = "invalid parameters"
) -> ApiError:
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


def not_enough_resources(data: list[dict[str, Any]]) -> ApiError:
    """`data`: `[{resourceSet, resourceType, available, requested}]`."""
    return ApiError(24, "not enough resources in resource set", data)


def incorrect_state(actual: Any, expected: Any, object_id: Any, prop: str) -> ApiError:
    return ApiError(
        25,
        "incorrect state",
        {"actual": actual, "expected": expected, "object": object_id, "property": prop},
    )


# -- forwarding to a pool master (the failover policy of xod/api/commands.py) -----------------


def outcome_unknown(method: str, object_id: Any, cause: BaseException) -> ApiError:
    return ApiError(
        21,
        f"outcome unknown: the pool master stopped answering after {method} was sent; "
        "it may or may not have run, and xod did not send it again",
        {"objectId": object_id, "code": "OUTCOME_UNKNOWN", "method": method, "reason": str(cause)},
    )


def master_unreachable(object_id: Any, waited: float, cause: BaseException) -> ApiError:
    return ApiError(
        9,
        f"server unreachable: no pool master answered within {waited:g} s",
        {"objectId": object_id, "reason": str(cause)},
    )


# -- XAPI errors → XO errors (the table is in the module docstring) ---------------------------


@dataclass(frozen=True)
class XapiFailure:
    """An XAPI error as the mapping sees it: its code, its params with OpaqueRefs turned into XO
    ids, the object the action was about, and the xod method that met it."""

    code: str
    params: list[str]
    object_id: Any = None
    method: str | None = None

    def param(self, index: int) -> str | None:
        return self.params[index] if len(self.params) > index else None


def operation_failed(object_id: Any, code: str, message: str, **data: Any) -> ApiError:
    """XO's operationFailed (21): the pool refused; `code` says why."""
    return ApiError(21, message, {"objectId": object_id, "code": code, **data})


def _vm_bad_power_state(f: XapiFailure) -> ApiError:
    # VM_BAD_POWER_STATE(vm, expected, actual)
    expected, actual = f.param(1), f.param(2)
    return ApiError(
        13,
        f"VM state is {actual} but should be {expected}",
        {"objectId": f.param(0), "expected": expected, "actual": actual},
    )


def _vm_lacks_feature(f: XapiFailure) -> ApiError:
    # VM_LACKS_FEATURE(vm, feature); the _SHUTDOWN/_SUSPEND forms carry the VM only.
    suffix = f.code.removeprefix("VM_LACKS_FEATURE").lstrip("_").lower()
    feature = f.param(1) or suffix or None
    return ApiError(14, f"VM lacks feature {feature}", {"objectId": f.param(0), "feature": feature})


def _forbidden(reason: str | None) -> Any:
    def convert(f: XapiFailure) -> ApiError:
        return forbidden_operation(f.method or f.code, reason or f.param(0))

    return convert


def _invalid_value(f: XapiFailure) -> ApiError:
    # INVALID_VALUE(field, value) / VALUE_NOT_SUPPORTED(field, value, reason) /
    # FIELD_TYPE_ERROR(field) / MAP_DUPLICATE_KEY(class, field, ref, key)
    field = f.param(1) if f.code == "MAP_DUPLICATE_KEY" else f.param(0)
    detail = f.param(2) if f.code == "VALUE_NOT_SUPPORTED" else None
    message = f"{f.code}: {field}" + (f" ({detail})" if detail else "")
    return invalid_parameter(f"/{field}" if field else "", f.code, message, {"params": f.params})


def _other_operation_in_progress(f: XapiFailure) -> ApiError:
    # OTHER_OPERATION_IN_PROGRESS(class, ref[, operation, task])
    running = {f.param(3) or "": f.param(2)} if f.param(2) else {}
    return incorrect_state(running, {}, f.param(1), "current_operations")


def _attached(actual: bool) -> Callable[[XapiFailure], ApiError]:
    # DEVICE_ALREADY_ATTACHED(device) / DEVICE_ALREADY_DETACHED(device)
    def convert(f: XapiFailure) -> ApiError:
        return incorrect_state(actual, not actual, f.param(0) or f.object_id, "attached")

    return convert


def _not_implemented(f: XapiFailure) -> ApiError:
    return ApiError(
        0, f"not implemented by this pool: {f.code}", {"code": f.code, "method": f.param(0)}
    )


XAPI_ERROR_TO_XO_ERROR: dict[str, Callable[[XapiFailure], ApiError]] = {
    # As xo-server maps them.
    "EHOSTUNREACH": lambda f: server_unreachable(f.param(0)),
    "HOST_OFFLINE": lambda f: ApiError(18, "host offline", {"objectId": f.param(0)}),
    "NO_HOSTS_AVAILABLE": lambda f: no_hosts_available(),
    "NOT_SUPPORTED_DURING_UPGRADE": lambda f: ApiError(15, "not supported during upgrade"),
    "OPERATION_BLOCKED": lambda f: ApiError(
        19, "operation blocked", {"objectId": f.param(0), "code": f.param(1)}
    ),
    "PATCH_PRECHECK_FAILED_ISO_MOUNTED": lambda f: ApiError(
        20, "patch precheck failed: isoMounted", {"objectId": f.param(0), "errorType": "isoMounted"}
    ),
    "PIF_VLAN_EXISTS": lambda f: object_already_exists(f.param(0), "PIF"),
    "SESSION_AUTHENTICATION_FAILED": lambda f: authentication_failed(),
    "VDI_IN_USE": lambda f: ApiError(
        17, "VDI in use", {"objectId": f.param(0), "operation": f.param(1)}
    ),
    "VM_BAD_POWER_STATE": _vm_bad_power_state,
    "VM_IS_TEMPLATE": lambda f: ApiError(12, "VM is a template", {"objectId": f.param(0)}),
    "VM_LACKS_FEATURE": _vm_lacks_feature,
    "VM_LACKS_FEATURE_SHUTDOWN": _vm_lacks_feature,
    "VM_MISSING_PV_DRIVERS": lambda f: ApiError(11, "missing PV drivers", {"objectId": f.param(0)}),
    # xod's own. A stale handle means the object vanished meanwhile: XO's noSuchObject.
    "HANDLE_INVALID": lambda f: no_such_object(f.param(1), f.param(0)),
    "VM_LACKS_FEATURE_SUSPEND": _vm_lacks_feature,
    "OPERATION_NOT_ALLOWED": _forbidden(None),
    "VM_IS_SNAPSHOT": _forbidden("the VM is a snapshot"),
    "PERMISSION_DENIED": _forbidden("the pool account may not do this"),
    "RBAC_PERMISSION_DENIED": _forbidden("the pool account may not do this"),
    "INVALID_VALUE": _invalid_value,
    "VALUE_NOT_SUPPORTED": _invalid_value,
    "FIELD_TYPE_ERROR": _invalid_value,
    "MAP_DUPLICATE_KEY": _invalid_value,
    "HOST_DISABLED": lambda f: incorrect_state(False, True, f.param(0) or f.object_id, "enabled"),
    "HOST_NOT_DISABLED": lambda f: incorrect_state(True, False, f.object_id, "enabled"),
    "OTHER_OPERATION_IN_PROGRESS": _other_operation_in_progress,
    "DEVICE_ALREADY_ATTACHED": _attached(True),
    "DEVICE_ALREADY_DETACHED": _attached(False),
    "HOST_IS_LIVE": lambda f: incorrect_state(
        "Running", "Halted", f.param(0) or f.object_id, "power_state"
    ),
    "VLAN_TAG_INVALID": lambda f: invalid_parameter(
        "/vlan", f.code, f"VLAN_TAG_INVALID: vlan ({f.param(0)} is not in 0-4094)"
    ),
    "INVALID_IP_ADDRESS_SPECIFIED": _invalid_value,
    "MESSAGE_METHOD_UNKNOWN": _not_implemented,
    "MESSAGE_PARAMETER_COUNT_MISMATCH": _not_implemented,
    "MESSAGE_REMOVED": _not_implemented,
    # Its param is the session ref, a secret: only the object is named.
    "SESSION_INVALID": lambda f: server_unreachable(f.object_id),
    "TASK_CANCELLED": lambda f: operation_failed(
        f.object_id, f.code, "operation cancelled (task.cancel)", task=f.param(0)
    ),
}


def _operation_failed(f: XapiFailure) -> ApiError:
    return operation_failed(f.object_id, f.code, f"operation failed: {f.code}", params=f.params)


def from_xapi(
    error: XapiError,
    translate_ref: Callable[[str], Any] | None = None,
    *,
    object_id: Any = None,
    method: str | None = None,
) -> ApiError | None:
    """The XO error of the table for an XAPI failure, or None when its code is not in it.

    `translate_ref(ref) -> id | None` turns OpaqueRefs in the params into XO ids, as XO does.
    """
    convert = XAPI_ERROR_TO_XO_ERROR.get(error.code)
    if convert is None:
        return None
    return convert(_failure(error, translate_ref, object_id, method))


def xapi_to_xo(
    error: XapiError,
    translate_ref: Callable[[str], Any] | None = None,
    *,
    object_id: Any = None,
    method: str | None = None,
) -> ApiError:
    """The XO error for any XAPI failure: the table's, else operationFailed (21) with the code."""
    failure = _failure(error, translate_ref, object_id, method)
    return XAPI_ERROR_TO_XO_ERROR.get(error.code, _operation_failed)(failure)


def _failure(
    error: XapiError, translate_ref: Callable[[str], Any] | None, object_id: Any, method: str | None
) -> XapiFailure:
    params = list(error.params)
    if translate_ref is not None:
        params = [(translate_ref(p) or p) if p.startswith("OpaqueRef:") else p for p in params]
    return XapiFailure(error.code, params, object_id, method)


def to_error_object(error: BaseException, *, is_admin: bool) -> dict[str, Any]:
    """The `error` member for any exception a handler raised: XO errors as they are, XAPI ones
    mapped, anything else opaque to non-admins (as xo-server does)."""
    if isinstance(error, ApiError):
        return error.to_json()
    if isinstance(error, XapiError):
        return xapi_to_xo(error).to_json()
    if isinstance(error, TransportError):
        return server_unreachable(getattr(error, "url", None)).to_json()
    if not is_admin:
        return unknown_error().to_json()
    data: dict[str, Any] = {"name": type(error).__name__, "message": str(error)}
    return unknown_error(str(error) or type(error).__name__, data).to_json()
