"""One XAPI request to one host of a pool, in the dialect that host speaks, and which requests
may be sent again after a transport failure.

xapi answers JSON-RPC at `/jsonrpc` and XML-RPC at `/`. xod speaks JSON-RPC to a host unless
it shows it cannot (a 404 at `/jsonrpc`, or an answer that is not `application/json`: then
XML-RPC, remembered per host), or the server's `protocol` forces one. Sessions, the master and
failover are xod/xapi/connection.py's job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import aiohttp
from yarl import URL

from xod.xapi.codec import (
    JSON_CONTENT_TYPE,
    XML_CONTENT_TYPE,
    decode_jsonrpc_response,
    decode_xmlrpc_response,
    encode_jsonrpc_request,
    encode_xmlrpc_request,
    jsonrpc_unsupported,
)
from xod.xapi.errors import ProtocolError
from xod.xapi.transport import Transport

log = logging.getLogger("xod.xapi")

# Turns a JSON-RPC answer body into the call's result (or raises its XapiError).
JsonDecoder = Callable[[bytes | bytearray], Any]
Dialect = Literal["auto", "jsonrpc", "xmlrpc"]

# Calls that change nothing on the pool, hence safe to send again after a transport failure
# (the first attempt may or may not have reached the host).
_SAFE_METHODS = frozenset(
    {
        "event.from",
        "event_from",
        "session.login_with_password",
        "system.listMethods",
        "session.get_this_host",
        "session.get_record",
    }
)


def is_idempotent(method: str) -> bool:
    """Whether a call may be retried on another host after a transport failure."""
    if method in _SAFE_METHODS:
        return True
    if method.startswith("Async."):
        return False
    _, _, message = method.rpartition(".")
    return message.startswith("get_")


class Rpc:
    """Requests to the hosts of one pool, each in the dialect it speaks."""

    __slots__ = ("_dialect", "_dialects", "_transport", "_unix_socket")

    def __init__(self, transport: Transport, dialect: Dialect, unix_socket: str | None) -> None:
        self._transport = transport
        self._dialect = dialect
        self._unix_socket = unix_socket
        self._dialects: dict[str, str] = {}  # host origin -> "jsonrpc" | "xmlrpc"

    @property
    def transport(self) -> Transport:
        return self._transport

    def dialect_of(self, url: URL) -> str | None:
        """The dialect remembered for a host, once it answered."""
        return self._dialects.get(self.host_key(url))

    def transfer_client(self) -> aiohttp.ClientSession:
        """A session of its own for one transfer (xod/xapi/transfers.py)."""
        return self._transport.transfer_client()

    async def close(self) -> None:
        await self._transport.close()

    def host_key(self, url: URL) -> str:
        return self._unix_socket or str(url.origin())

    async def call(
        self,
        url: URL,
        method: str,
        params: list[Any],
        timeout: float,
        decode_json: JsonDecoder = decode_jsonrpc_response,
    ) -> Any:
        """One request to one host, in the dialect it speaks (JSON-RPC unless it showed it
        cannot, or XML-RPC is forced). `decode_json` only applies to JSON-RPC answers."""
        key = self.host_key(url)
        dialect = self._dialects.get(key) or ("xmlrpc" if self._dialect == "xmlrpc" else "jsonrpc")
        if dialect == "jsonrpc":
            answer = await self._transport.post(
                url.with_path("/jsonrpc"),
                encode_jsonrpc_request(method, params),
                JSON_CONTENT_TYPE,
                timeout=timeout,
                method=method,
            )
            if jsonrpc_unsupported(answer.status, answer.content_type):
                if self._dialect == "jsonrpc":
                    raise ProtocolError("host does not speak JSON-RPC", url=key, method=method)
                log.info("host %s does not speak JSON-RPC: using XML-RPC", key)
                self._dialects[key] = "xmlrpc"
            else:
                if answer.status != 200:
                    raise ProtocolError(f"HTTP {answer.status}", url=key, method=method)
                self._dialects[key] = "jsonrpc"
                return decode_json(answer.body)
        answer = await self._transport.post(
            url.with_path("/"),
            encode_xmlrpc_request(method, params),
            XML_CONTENT_TYPE,
            timeout=timeout,
            method=method,
        )
        if answer.status != 200:
            raise ProtocolError(f"HTTP {answer.status}", url=key, method=method)
        self._dialects[key] = "xmlrpc"
        return decode_xmlrpc_response(answer.body)
