"""REST errors: Xen Orchestra's JSON error bodies (`{"error": message, "data"?: …}`) and the
HTTP status of each XO error code, so the same failure reads the same on both APIs."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from xod.api import errors
from xod.xapi.errors import TransportError, XapiError

# XO error code (xod/api/errors.py) → HTTP status, as xo-server's REST error handler maps them.
STATUS_OF_CODE = {
    0: 501,  # not implemented
    1: 404,  # no such object
    2: 403,  # not enough permissions
    3: 401,  # invalid credentials
    5: 403,  # forbidden operation
    9: 503,  # server unreachable
    10: 422,  # invalid parameters
    # xod's choice where XO answers 500: the object is not in a state that allows the
    # operation (a VM already halted…), a conflict the client can resolve.
    13: 409,  # VM bad power state
    16: 409,  # object already exists
    21: 500,  # operation failed (a XAPI error)
    25: 409,  # incorrect state
    410: 410,  # xod: a `since` revision outside the history
    429: 429,  # xod: too many subscriptions
}
# The XO errors that stand for a XAPI refusal (xod/api/errors.py's table): XO adds `info`.
XAPI_CODES = frozenset({7, 11, 12, 13, 14, 15, 17, 18, 19, 20, 21})
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Basic realm="xo"'}
_UNSET: Any = object()
XAPI_ERROR_INFO = "This is a XenServer/XCP-ng error, not an XO error"


class RestError(Exception):
    """An error answered as `status` with XO's JSON body."""

    def __init__(
        self,
        status: int,
        message: Any,
        data: Any = _UNSET,
        headers: dict[str, str] | None = None,
        info: str | None = None,
    ) -> None:
        super().__init__(str(message))
        self.status = status
        self.message = message
        self.data = data
        self.headers = headers or {}
        self.info = info

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.data is not _UNSET:
            body["data"] = self.data
        if self.info is not None:
            body["info"] = self.info
        return body


def invalid_credentials() -> RestError:
    return RestError(401, "invalid credentials", headers=WWW_AUTHENTICATE)


def not_found(what: str) -> RestError:
    return RestError(404, f"no such {what}")


def unprocessable(name: str, message: str, value: Any) -> RestError:
    """A bad query parameter or body field, shaped as XO's validation errors (422)."""
    return RestError(422, {name: {"message": message, "value": value}}, {})


def from_exception(error: BaseException) -> RestError:
    """Any failure a command or a method raised, as its REST error."""
    if isinstance(error, RestError):
        return error
    if isinstance(error, XapiError):
        error = errors.xapi_to_xo(error)
    if isinstance(error, TransportError):
        error = errors.server_unreachable(getattr(error, "url", None))
    if isinstance(error, errors.ApiError):
        status = STATUS_OF_CODE.get(error.code, 500)
        if error.code == 3:
            return invalid_credentials()
        info = XAPI_ERROR_INFO if error.code in XAPI_CODES else None
        return RestError(status, error.message, error.to_json().get("data", _UNSET), info=info)
    return RestError(500, "internal error")


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error_response(error: RestError) -> web.Response:
    return json_response(error.body(), error.status, error.headers)
