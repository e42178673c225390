"""Async XAPI client: one PoolConnection per pool (sessions, master following, failover,
JSON-RPC with XML-RPC fallback, Async tasks, event.from). Never imports the cache."""

from xod.xapi.codec import NULL_REF
from xod.xapi.connection import PoolConnection
from xod.xapi.errors import (
    CallTimeout,
    ProtocolError,
    TaskCancelled,
    TlsError,
    TransportError,
    XapiError,
)

__all__ = [
    "NULL_REF",
    "CallTimeout",
    "PoolConnection",
    "ProtocolError",
    "TaskCancelled",
    "TlsError",
    "TransportError",
    "XapiError",
]
