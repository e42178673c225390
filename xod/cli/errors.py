"""What can go wrong for a person at the keyboard, each with its own exit code.

Every failure the CLI expects is a `CliError`: `main` prints its one-line message on stderr and
exits with its code. The codes are part of the interface (scripts test them) and are listed in
`xod-cli --help`, so they never change meaning.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    SERVER_ERROR = 1  # the method ran and the server answered with an error
    USAGE = 2  # bad command line (argparse uses 2 as well)
    NOT_REGISTERED = 3
    AUTH_FAILED = 4  # email/password rejected, or sign-ins throttled
    UNREACHABLE = 5  # no connection, wrong URL, or the connection dropped
    UNKNOWN_METHOD = 6
    INVALID_PARAMS = 7
    TOKEN_REJECTED = 8  # the registered token expired or was revoked
    INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    the server answered the method with an error
  2    usage error (bad command line or value)
  3    not registered (run `xod-cli register URL EMAIL` first)
  4    authentication failed (wrong email or password)
  5    server unreachable (or the connection was lost)
  6    unknown method
  7    invalid parameters (each reported with its parameter path)
  8    the registered token has expired or was revoked (register again)
  130  interrupted"""


class CliError(Exception):
    exit_code: ExitCode = ExitCode.SERVER_ERROR

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CliError):
    exit_code = ExitCode.USAGE


class NotRegistered(CliError):
    exit_code = ExitCode.NOT_REGISTERED


class Unreachable(CliError):
    exit_code = ExitCode.UNREACHABLE


class RpcError(CliError):
    """An error object from a JSON-RPC reply, kept whole so callers can look at code/data."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.method = method
        self.code = error.get("code")
        self.data = error.get("data")
        self.error = error
        super().__init__(describe_rpc_error(method, error), exit_code_for(self.code))


# -32601 is JSON-RPC's "method not found"; 10 is XO's invalidParameters (xod/api/errors.py).
METHOD_NOT_FOUND = -32601
INVALID_PARAMETERS = 10
INVALID_CREDENTIALS = 3
UNAUTHORIZED = 2


def exit_code_for(code: Any) -> ExitCode:
    if code == METHOD_NOT_FOUND:
        return ExitCode.UNKNOWN_METHOD
    if code == INVALID_PARAMETERS:
        return ExitCode.INVALID_PARAMS
    if code == INVALID_CREDENTIALS:
        return ExitCode.AUTH_FAILED
    return ExitCode.SERVER_ERROR


def param_path(error: dict[str, Any]) -> str:
    """`/vm/name_label` → `vm.name_label`; a missing property is named by its own path."""
    path = str(error.get("instancePath") or "")
    params = error.get("params") or {}
    if error.get("keyword") == "required" and isinstance(params, dict):
        missing = params.get("missingProperty")
        if missing:
            path = f"{path}/{missing}"
    if error.get("keyword") == "additionalProperties" and isinstance(params, dict):
        extra = params.get("additionalProperty")
        if extra:
            path = f"{path}/{extra}"
    return ".".join(part for part in path.split("/") if part) or "(params)"


def describe_invalid_params(method: str, data: Any) -> str:
    errors = data.get("errors") if isinstance(data, dict) else None
    if not errors:
        return f"invalid parameters for {method}"
    details = "; ".join(
        f"{param_path(e)}: {e.get('message', 'invalid')}" for e in errors if isinstance(e, dict)
    )
    return f"invalid parameters for {method}: {details}"


def describe_rpc_error(method: str, error: dict[str, Any]) -> str:
    code = error.get("code")
    message = str(error.get("message") or "error")
    if code == METHOD_NOT_FOUND:
        return f"unknown method: {method} (see `xod-cli list-commands`)"
    if code == INVALID_PARAMETERS:
        return describe_invalid_params(method, error.get("data"))
    data = error.get("data")
    if code == UNAUTHORIZED and isinstance(data, dict):
        obj = data.get("object")
        if isinstance(obj, dict) and obj.get("id"):
            # An object-level refusal: which permission on which object.
            what = f"{obj.get('type') or 'object'} {obj['id']}"
            return f"{method}: {message}: {data.get('permission')} on {what} (code {code})"
    return f"{method}: {message} (code {code})"
