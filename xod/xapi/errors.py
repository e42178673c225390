"""Errors raised by the XAPI client: what the pool answered, and what the network did."""

from __future__ import annotations

import copy

# Codes whose parameters are session refs: a session id is a bearer secret and must never
# reach a log line or an error message.
_SECRET_PARAM_CODES = frozenset({"SESSION_INVALID"})


class XapiError(Exception):
    """A failure answered by XAPI: `[code, *params]` on the wire (`ErrorDescription`, or JSON-RPC
    v2 `{code: 1, message: code, data: params}`). The call reached the pool and was refused."""

    def __init__(self, code: str, params: list[str] | None = None) -> None:
        self.code = code
        self.params = [str(p) for p in (params or [])]
        super().__init__(code, self.params)

    @classmethod
    def from_description(cls, description: object) -> XapiError:
        """Build from a raw `[code, p1, ...]` list (what XML-RPC and task.error_info carry)."""
        if isinstance(description, list) and description:
            code, *params = description
            if code == "TASK_CANCELLED":
                return TaskCancelled(str(code), params)
            return cls(str(code), params)
        return cls("INTERNAL_ERROR", [f"malformed error description: {description!r}"])

    def __str__(self) -> str:
        if self.code in _SECRET_PARAM_CODES:
            return f"{self.code} (params hidden)"
        if not self.params:
            return self.code
        return f"{self.code}({', '.join(self.params)})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self})"


class TaskCancelled(XapiError):
    """An Async task ended with status `cancelled` (someone called task.cancel on it)."""


class TransportError(Exception):
    """The host could not be reached or did not answer: refused, reset, TLS failure, timeout.
    The host may be gone; for a non-idempotent call the outcome is unknown.

    `sent` says whether the request may have reached the host: only the transport knows (it
    is False when the connection could not be opened, or the call never got as far as its
    own request); anything after the bytes were written, a broken answer included, is True."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        method: str | None = None,
        sent: bool = True,
    ) -> None:
        self.url = url
        self.method = method
        self.sent = sent
        parts = [message]
        if method:
            parts.append(f"method {method}")
        if url:
            parts.append(f"host {url}")
        super().__init__("; ".join(parts))

    def unsent(self) -> TransportError:
        """This failure as met by a call it kept from being written (a failed login, say)."""
        if not self.sent:
            return self
        twin = copy.copy(self)
        twin.sent = False
        return twin


class CallTimeout(TransportError):
    """No answer within the call's timeout (the host accepted the request, or hangs)."""


class TlsError(TransportError):
    """Certificate verification or fingerprint pinning rejected the peer."""


class ProtocolError(TransportError):
    """The host answered something that is not an XAPI response (bad status, bad body)."""
