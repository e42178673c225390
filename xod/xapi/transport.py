"""HTTP(S) and Unix-socket transport for XAPI calls on aiohttp: one keep-alive connection pool
per pool connection, TLS verification / allow_unauthorized / certificate pinning, a timeout on
every request, and network failures mapped to TransportError."""

# A `timeout` argument here is a per-request deadline handed down to the HTTP layer (the
# module contract), not a replacement for asyncio.timeout.

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiohttp
from yarl import URL

from xod.xapi.errors import CallTimeout, TlsError, TransportError

# Enough parallel requests for a busy pool (XO allows 20 concurrent calls) plus long polls.
_CONNECTION_LIMIT = 64
# Below the daemon's mmap threshold (xod/runtime.py): bigger buffers would each be mapped and
# unmapped again, page faults and zeroing included, a large cost per byte moved.
TRANSFER_READ_BUFFER = 256 * 1024


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    content_type: str | None
    body: bytes | bytearray  # both decoders (orjson, msgspec, ElementTree) take either


def parse_fingerprint(fingerprint: str) -> bytes:
    """A SHA-256 certificate fingerprint as 32 bytes, from hex with or without `:` separators
    (`openssl x509 -fingerprint -sha256` prints `AB:CD:…`), optionally prefixed `sha256:`."""
    text = fingerprint.strip().lower()
    text = text.removeprefix("sha256:").removeprefix("sha256=")
    digest = bytes.fromhex(text.replace(":", "").replace(" ", ""))
    if len(digest) != 32:
        raise ValueError("certificate fingerprint must be a SHA-256 digest (32 bytes)")
    return digest


async def read_body(response: aiohttp.ClientResponse) -> bytes | bytearray:
    """The whole body. With a Content-Length (and no content coding), read into one buffer of
    that size as it arrives: `response.read()` joins the chunks at the end, holding the body
    twice for a moment (27 MB of the 66 MB answer of a 10k-VM pool's largest class)."""
    size = response.content_length
    if size is None or response.headers.get("Content-Encoding"):
        return await response.read()
    body = bytearray(size)
    filled = 0
    with memoryview(body) as view:
        async for chunk in response.content.iter_any():
            end = filled + len(chunk)
            if end > size:
                raise aiohttp.ClientPayloadError("body longer than its Content-Length")
            view[filled:end] = chunk
            filled = end
    if filled != size:
        raise aiohttp.ClientPayloadError("body shorter than its Content-Length")
    return body


class Transport:
    """POSTs RPC bodies to XAPI hosts; shared by every host of one pool (failover only changes
    the URL). Create and use it inside a running event loop."""

    def __init__(
        self,
        *,
        allow_unauthorized: bool = False,
        fingerprint: str | None = None,
        unix_socket: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        http_proxy: str | None = None,
    ) -> None:
        self._allow_unauthorized = allow_unauthorized
        # Pinning replaces CA verification: the pinned certificate is trusted even if self-signed.
        self._fingerprint = parse_fingerprint(fingerprint) if fingerprint else None
        self._unix_socket = unix_socket
        self._ssl_context = ssl_context
        # XO's per-server `httpProxy`: every request to the pool goes through it (CONNECT for
        # HTTPS hosts).
        self._proxy = http_proxy or None
        self._session: aiohttp.ClientSession | None = None

    def _ssl_setting(self) -> aiohttp.Fingerprint | ssl.SSLContext | bool:
        if self._fingerprint is not None:
            return aiohttp.Fingerprint(self._fingerprint)
        if self._allow_unauthorized:
            return False
        return self._ssl_context if self._ssl_context is not None else True

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector
            if self._unix_socket is not None:
                connector = aiohttp.UnixConnector(path=self._unix_socket, limit=_CONNECTION_LIMIT)
            else:
                connector = aiohttp.TCPConnector(
                    ssl=self._ssl_setting(), limit=_CONNECTION_LIMIT, limit_per_host=0
                )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Bodies are already encoded bytes; no cookies, no automatic decompression of
                # anything but what xapi sends.
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent",),
                headers={"User-Agent": "xod"},
            )
        return self._session

    def transfer_client(self) -> aiohttp.ClientSession:
        """A session of its own for one long transfer (xod/xapi/transfers.py), with the pool's
        TLS settings: a stream held for minutes must not take an RPC connection slot."""
        connector: aiohttp.BaseConnector
        if self._unix_socket is not None:
            connector = aiohttp.UnixConnector(path=self._unix_socket, limit=1)
        else:
            connector = aiohttp.TCPConnector(ssl=self._ssl_setting(), limit=1)
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            # Read in bigger gulps than aiohttp's 64 KiB: fewer pauses of the socket; the
            # buffer stays bounded (aiohttp pauses reading past twice this).
            read_bufsize=TRANSFER_READ_BUFFER,
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "xod"},
        )

    def client(self) -> aiohttp.ClientSession:
        """The pool's HTTP client (its TLS settings and keep-alive pool), for the XAPI HTTP
        handlers beside the RPC endpoint (xod/xapi/http.py)."""
        return self._client()

    @property
    def proxy(self) -> str | None:
        return self._proxy

    @property
    def unix_socket(self) -> str | None:
        return self._unix_socket

    async def post(
        self, url: URL, body: bytes, content_type: str, *, timeout: float, method: str
    ) -> HttpAnswer:
        """One request. `method` (the XAPI method name) only labels errors; parameters are
        never put in a message (they can hold passwords and session ids)."""
        where = str(url.origin()) if url.host else "unix socket"
        try:
            async with self._client().post(
                url,
                data=body,
                headers={"Content-Type": content_type, "Accept": content_type},
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
                proxy=self._proxy,
            ) as response:
                payload = await read_body(response)
                return HttpAnswer(response.status, response.headers.get("Content-Type"), payload)
        # `sent=False` only where aiohttp failed while opening the connection: the request
        # cannot have been written. Anything later may have reached the host.
        except aiohttp.ServerFingerprintMismatch:
            raise TlsError(
                "certificate fingerprint mismatch", url=where, method=method, sent=False
            ) from None
        except aiohttp.ClientSSLError as error:
            raise TlsError(f"TLS failure: {error}", url=where, method=method, sent=False) from None
        except ssl.SSLError as error:
            raise TlsError(f"TLS failure: {error}", url=where, method=method) from None
        except aiohttp.ConnectionTimeoutError:
            raise CallTimeout(
                f"no connection within {timeout:g} s", url=where, method=method, sent=False
            ) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise CallTimeout(f"no answer within {timeout:g} s", url=where, method=method) from None
        except aiohttp.ClientConnectorError as error:
            raise TransportError(
                f"cannot connect: {error.strerror or error}", url=where, method=method, sent=False
            ) from None
        except (aiohttp.ClientError, OSError) as error:
            reason = str(error) or type(error).__name__
            raise TransportError(f"connection failed: {reason}", url=where, method=method) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
