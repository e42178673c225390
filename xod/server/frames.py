"""Pre-framed WebSocket messages and the two wire formats (pure, no I/O).

A server frame is never masked and xod negotiates no extension, so the bytes of a frame are the
same for every connection: notifications are framed once and handed to every transport as is.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import orjson

from xod.cache.encoded import EncodedObjects, Prepared

MSGPACK_SUBPROTOCOL = "xod.msgpack"

_OP_TEXT = 0x1
_OP_BINARY = 0x2
_OP_CLOSE = 0x8
_OP_PING = 0x9
_OP_PONG = 0xA

PING_FRAME = bytes((0x80 | _OP_PING, 0))


def frame_header(length: int, binary: bool) -> bytes:
    first = 0x80 | (_OP_BINARY if binary else _OP_TEXT)
    if length < 126:
        return struct.pack("!BB", first, length)
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def data_frame(payload: bytes, binary: bool) -> bytes:
    return frame_header(len(payload), binary) + payload


# A payload at least this big is written as its frame header then slices of it, as the
# connection drains: neither copied behind a header nor into the transport's buffer whole.
SLICED_PAYLOAD = 1024 * 1024


# What is written to a connection: frames, or views of one frame's bytes.
Piece = bytes | memoryview


def frame_slices(payload: bytes, binary: bool) -> Iterator[Piece]:
    """One frame of `payload` as its header and `SLICED_PAYLOAD`-byte views of it."""
    yield frame_header(len(payload), binary)
    view = memoryview(payload)
    for start in range(0, len(payload), SLICED_PAYLOAD):
        yield view[start : start + SLICED_PAYLOAD]


def close_frame(code: int, reason: str) -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:123]
    return struct.pack("!BB", 0x80 | _OP_CLOSE, len(payload)) + payload


def pong_frame(payload: bytes) -> bytes:
    payload = payload[:125]
    return bytes((0x80 | _OP_PONG, len(payload))) + payload


def _json_default(value: Any) -> Any:
    if type(value) is Prepared:
        return value.json()  # the same value, its objects already JSON
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """A message as JSON; a `Prepared` result's own JSON spliced in (xod/cache/encoded.py)."""
    return orjson.dumps(value, default=_json_default)


def _msgpack_default(value: Any) -> Any:
    if type(value) is Prepared:
        return value.value
    # Whatever orjson can serialise (dataclasses, datetimes…) goes through its JSON form.
    return orjson.loads(orjson.dumps(value))


def pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, default=_msgpack_default)
    return packed


class WireFormat:
    """How one connection wants its messages: JSON text frames or msgpack binary frames."""

    __slots__ = ("binary", "encode", "name")

    def __init__(self, name: str, binary: bool, encode: Callable[[Any], bytes]) -> None:
        self.name = name
        self.binary = binary
        self.encode = encode

    def frame(self, message: Any) -> bytes:
        return data_frame(self.encode(message), self.binary)

    def __repr__(self) -> str:
        return f"WireFormat({self.name})"


JSON = WireFormat("json", False, dumps)
MSGPACK = WireFormat("msgpack", True, pack)
FORMATS = (JSON, MSGPACK)


def all_frames(
    fmt: WireFormat,
    enter: dict[str, Any],
    exit_ids: list[str],
    *,
    max_objects: int | None = None,
    max_bytes: int | None = None,
) -> list[bytes]:
    """XO's `all` notification for one batch, as xo-server sends it: enter first, then exit with
    `{id: 0}`; an empty half is not sent. With limits, each half is split into frames of at
    most `max_objects` objects and (unless one object alone is bigger) `max_bytes` bytes: a
    pool's first sync is not one giant frame copied into every lagging client's buffer."""

    def encoder(kind: str) -> Callable[[list[tuple[str, Any]]], bytes]:
        def encode(items: list[tuple[str, Any]]) -> bytes:
            params = {"type": kind, "items": dict(items)}
            return fmt.frame({"jsonrpc": "2.0", "method": "all", "params": params})

        return encode

    frames: list[bytes] = []
    for encode, items in (
        (encoder("enter"), list(enter.items())),
        (encoder("exit"), [(object_id, 0) for object_id in exit_ids]),
    ):
        step = max_objects or len(items) or 1
        for start in range(0, len(items), step):
            frames += _bounded(encode, items[start : start + step], max_bytes)
    return frames


def _bounded(
    encode: Callable[[list[tuple[str, Any]]], bytes],
    items: list[tuple[str, Any]],
    max_bytes: int | None,
) -> list[bytes]:
    """`items` as one frame, or halved until each frame fits in `max_bytes` (order kept). Only
    an oversized chunk is encoded again, so the usual cost is one encoding."""
    frame = encode(items)
    if max_bytes is None or len(frame) <= max_bytes or len(items) <= 1:
        return [frame]
    half = len(items) // 2
    return _bounded(encode, items[:half], max_bytes) + _bounded(encode, items[half:], max_bytes)


def changes_message(
    subscription: str, revision: int, enter: dict[str, Any], exit_ids: list[str]
) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "xod.changes",
        "params": {
            "subscription": subscription,
            "revision": revision,
            "enter": enter,
            "exit": exit_ids,
        },
    }


class ChangesTemplate:
    """One `xod.changes` payload encoded once, with each subscription's id spliced in.

    Subscriptions sharing a scope receive the same payload except for their id. The payload is
    encoded once as `prefix + <id> + tail`; ids all have the same length, so the frame header
    is shared too, and a subscription's frame costs one bytes concatenation.
    """

    __slots__ = ("head", "tail")

    def __init__(
        self,
        fmt: WireFormat,
        id_length: int,
        revision: int,
        enter: Any,
        exit_ids: list[str],
        encoded: EncodedObjects | None = None,
    ) -> None:
        """`encoded`: where the cache keeps its objects' JSON, to splice into a JSON payload
        (a snapshot's whole objects) instead of encoding them again."""
        if fmt.binary:
            # msgpack maps are a count followed by key/value pairs: build the outer maps by
            # hand, the id's str header included in the prefix.
            prefix = (
                b"\x83"
                + pack("jsonrpc")
                + pack("2.0")
                + pack("method")
                + pack("xod.changes")
                + pack("params")
                + b"\x84"
                + pack("subscription")
                + _msgpack_str_header(id_length)
            )
            tail = (
                pack("revision")
                + pack(revision)
                + pack("enter")
                + pack(enter)
                + pack("exit")
                + pack(exit_ids)
            )
        else:
            prefix = b'{"jsonrpc":"2.0","method":"xod.changes","params":{"subscription":"'
            tail = (
                b'","revision":'
                + str(revision).encode()
                + b',"enter":'
                + orjson.dumps(enter if encoded is None else encoded.fragments(enter.items()))
                + b',"exit":'
                + orjson.dumps(exit_ids)
                + b"}}"
            )
        length = len(prefix) + id_length + len(tail)
        self.head = frame_header(length, fmt.binary) + prefix
        self.tail = tail

    def frame(self, subscription_id: bytes) -> bytes:
        return self.head + subscription_id + self.tail


def _msgpack_str_header(length: int) -> bytes:
    if length < 32:
        return bytes((0xA0 | length,))
    if length < 256:
        return bytes((0xD9, length))
    return b"\xda" + struct.pack("!H", length)
