"""Streams to and from a pool master's transfer handlers (`/export`, `/export_raw_vdi`, `/import`,
`/import_raw_vdi`), as XO's `xen-api` client does: the session in the query, a `task_id` of the
caller's, a status line that only says the transfer started — the task tells how it ended.

Nothing is buffered here beyond a bounded read buffer: a download is read as fast as its consumer
takes it, an upload sent as fast as its source yields. A download from a plain-HTTP master (or
its local unix socket) comes on a socket of its own (xod/xapi/raw_download.py), so that its body
can be spliced to the client without passing through xod's memory; over TLS or through the
server's HTTP proxy it is read with aiohttp.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Protocol

import aiohttp
from yarl import URL

from xod.xapi.connection import PoolConnection
from xod.xapi.errors import TransportError
from xod.xapi.raw_download import RawDownload, TransferRefused, open_download

__all__ = ["Body", "Download", "RawDownload", "TransferRefused", "download", "upload"]

CONNECT_TIMEOUT = 30.0
# A transfer whose peer sends nothing for this long is dead (xapi answers exports within
# seconds; XO waits up to 30 min for the first byte of a snapshot export).
IDLE_TIMEOUT = 600.0


def _url(connection: PoolConnection, path: str, query: dict[str, str]) -> URL:
    session = connection.session_ref
    if session is None:
        raise TransportError("no session with the pool master", method=path, sent=False)
    return URL(connection.master_url).with_path(path).with_query({**query, "session_id": session})


def _timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=IDLE_TIMEOUT)


async def _refusal(response: aiohttp.ClientResponse) -> TransferRefused:
    text = (await response.content.read(2048)).decode("utf-8", "replace")
    return TransferRefused(response.status, text.strip() or response.reason or "")


class Body(Protocol):
    """A download's body still to be read: chunk by chunk, or (a RawDownload) spliced."""

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


class Download:
    """An export under way over aiohttp (a TLS master, or one behind the server's proxy): its
    body chunk by chunk."""

    def __init__(self, client: aiohttp.ClientSession, response: aiohttp.ClientResponse) -> None:
        self._client = client
        self._response = response

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            # Each received piece as it is (≤ 256 KiB): no joining into bigger buffers, which
            # would cost a copy and, past the mmap threshold (xod/runtime.py), a mapping each.
            async for data, _end in self._response.content.iter_chunks():
                yield data
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise TransportError(f"transfer interrupted: {error}", method="download") from None

    async def close(self) -> None:
        self._response.close()
        await self._client.close()


async def download(connection: PoolConnection, path: str, query: dict[str, str]) -> Body:
    """GET `path` on the master; raises TransferRefused on a non-200 answer."""
    url = _url(connection, path, query)
    transport = connection.transport
    if url.scheme == "http" and transport.proxy is None:
        return await open_download(
            url,
            unix_socket=transport.unix_socket,
            connect_timeout=CONNECT_TIMEOUT,
            idle_timeout=IDLE_TIMEOUT,
        )
    client = connection.transfer_client()
    try:
        response = await client.get(
            url, timeout=_timeout(), allow_redirects=False, proxy=transport.proxy
        )
    except BaseException as error:
        await client.close()
        if isinstance(error, aiohttp.ClientError | OSError | TimeoutError):
            raise TransportError(f"cannot start the transfer: {error}", method=path) from None
        raise
    if response.status != 200:
        refused = await _refusal(response)
        response.close()
        await client.close()
        raise refused
    return Download(client, response)


async def upload(
    connection: PoolConnection,
    path: str,
    query: dict[str, str],
    body: AsyncIterable[bytes],
    length: int,
) -> int | None:
    """PUT `length` bytes to `path` on the master (xapi refuses chunked uploads): the HTTP
    status, or None when the master cut the connection (it does on a failure it found in the
    data: its task says which)."""
    client = connection.transfer_client()
    headers: dict[str, Any] = {
        "Content-Length": str(length),
        "Content-Type": "application/octet-stream",
    }
    try:
        async with client.put(
            _url(connection, path, query),
            data=body,
            headers=headers,
            timeout=_timeout(),
            allow_redirects=False,
            proxy=connection.transport.proxy,
        ) as response:
            if response.status != 200:
                raise await _refusal(response)
            await response.read()
            return response.status
    except (aiohttp.ClientError, OSError) as error:
        if isinstance(error, aiohttp.ClientConnectorError):
            raise TransportError(f"cannot start the transfer: {error}", method=path) from None
        return None
    finally:
        await client.close()
