"""XAPI's HTTP handlers beside the RPC endpoint (`/rrd_updates` …), read through the pool
connection's own HTTP client (its TLS settings, proxy and keep-alive pool).

A resource is fetched from the host that holds it (`address`; the master when None), with the
connection's session id, and read with bounded memory: a body over `max_bytes` is refused as it
arrives, before it is held whole. Failures are the XAPI client's: TransportError (and its
CallTimeout / TlsError / ProtocolError) for the network and for answers that are not a 200.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import aiohttp

from xod.xapi.connection import PoolConnection
from xod.xapi.errors import CallTimeout, ProtocolError, TlsError, TransportError

# More than any /rrd_updates answer of a full host (a few MB with hundreds of VMs), far less
# than what would hurt the daemon if a host sent garbage without end.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


async def get_resource(
    connection: PoolConnection,
    path: str,
    query: Mapping[str, str],
    *,
    address: str | None = None,
    timeout: float = 30.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytearray:
    """`GET <host>/<path>?<query>&session_id=…`: the body of a 200 answer."""
    session = connection.session_ref
    if session is None:
        raise TransportError("not connected", method=path, sent=False)
    url = connection.host_url(address).with_path(path)
    where = str(url.origin()) if url.host else "unix socket"
    transport = connection.transport
    try:
        async with transport.client().get(
            url,
            params={**query, "session_id": session},
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=True,
            proxy=transport.proxy,
        ) as response:
            if response.status != 200:
                raise ProtocolError(f"HTTP {response.status}", url=where, method=path)
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise ProtocolError(f"answer of {declared} bytes", url=where, method=path)
            body = bytearray()
            async for chunk in response.content.iter_any():
                body += chunk
                if len(body) > max_bytes:
                    raise ProtocolError(
                        f"answer longer than {max_bytes} bytes", url=where, method=path
                    )
            return body
    except TransportError:
        raise
    except aiohttp.ServerFingerprintMismatch:
        raise TlsError(
            "certificate fingerprint mismatch", url=where, method=path, sent=False
        ) from None
    except (aiohttp.ClientSSLError, ssl.SSLError) as error:
        raise TlsError(f"TLS failure: {error}", url=where, method=path, sent=False) from None
    except (TimeoutError, aiohttp.ServerTimeoutError):
        raise CallTimeout(f"no answer within {timeout:g} s", url=where, method=path) from None
    except aiohttp.ClientConnectorError as error:
        raise TransportError(
            f"cannot connect: {error.strerror or error}", url=where, method=path, sent=False
        ) from None
    except (aiohttp.ClientError, OSError) as error:
        reason = str(error) or type(error).__name__
        raise TransportError(f"connection failed: {reason}", url=where, method=path) from None
