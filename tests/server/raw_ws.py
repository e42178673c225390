"""A raw WebSocket client on a plain socket: handshake, masked frames out, frames in — the way
to be a client that reads only when (and as little as) a test says."""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
import struct

import orjson


def client_frame(payload: bytes) -> bytes:
    """A masked text frame, as every client must send."""
    mask = secrets.token_bytes(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, 0x80 | length)
    else:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawWebSocket:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    @classmethod
    async def connect(cls, host: str, port: int, receive_buffer: int = 4096) -> RawWebSocket:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        request = (
            f"GET /api/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        client = cls(sock)
        async with asyncio.timeout(10):  # the handshake's answer
            while b"\r\n\r\n" not in client._buffer:
                client._buffer += await loop.sock_recv(sock, 4096)
        head, _, client._buffer = client._buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return client

    def send_calls(self, messages: list[dict]) -> asyncio.Task[None]:
        """Pipeline `messages` from a background task: the server may stop reading them."""
        frames = b"".join(client_frame(orjson.dumps(m)) for m in messages)
        return asyncio.get_running_loop().create_task(
            asyncio.get_running_loop().sock_sendall(self.sock, frames)
        )

    async def _read(self, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        while len(self._buffer) < size:
            chunk = await loop.sock_recv(self.sock, 65536)
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    async def recv(self) -> tuple[int, bytes]:
        """The next frame: (opcode, payload)."""
        first, second = await self._read(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self._read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._read(8))
        return first & 0x0F, await self._read(length)

    def close(self) -> None:
        self.sock.close()
