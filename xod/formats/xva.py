"""XVA, XAPI's VM export format: a ustar tar whose first member `ova.xml` describes the VM's
objects (an XML-RPC value), then each disk as 1 MiB chunk files `Ref:N/00000000`, each followed
by its checksum file `Ref:N/00000000.xxhash` (XXH64, 16 upper-case hex digits), then the tar end.
All-zero chunks may be left out except each disk's first and last (the importer stops at the
virtual size and takes the chunk size from the first chunk). The whole stream may be gzip- or
zstd-compressed.

`write_xva` produces it chunk by chunk; `XvaReader` is a push parser that checks every header
and checksum and returns the ova.xml and the disk writes as the bytes arrive, holding at most
one chunk in memory.
"""

from __future__ import annotations

import hashlib
import tarfile
import xmlrpc.client
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import xxhash
import zstandard

CHUNK_SIZE = 1024 * 1024
BLOCK = 512
OVA_XML = "ova.xml"
# Largest tar member accepted: ova.xml of a big VM, or a disk chunk (1 MiB by XAPI, bigger by
# none we know): anything larger is refused rather than buffered.
MAX_MEMBER = 16 * 1024 * 1024
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
Compression = Literal["zstd", "gzip"] | None
END_OF_ARCHIVE = bytes(2 * BLOCK)


class XvaError(ValueError):
    """Not an XVA this module can read; the message says why."""


# -- ova.xml -------------------------------------------------------------------------------------


def _strings(value: Any) -> Any:
    """Numbers as strings, as XAPI writes int64 fields (XML-RPC ints are 32-bit)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)  # a subclass (a datetime string, say) as a plain string
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strings(v) for v in value]
    return value


def encode_ova_xml(version: dict[str, Any], objects: list[dict[str, Any]]) -> bytes:
    """`ova.xml`: a `<value>` struct `{version, objects: [{class, id, snapshot}…]}`."""
    params = xmlrpc.client.dumps((_strings({"version": version, "objects": objects}),))
    start = params.index("<value>")
    end = params.rindex("</value>") + len("</value>")
    return params[start:end].encode()


def decode_ova_xml(data: bytes) -> dict[str, Any]:
    text = data.decode("utf-8", "replace")
    try:
        (value,), _ = xmlrpc.client.loads(
            f"<methodResponse><params><param>{text}</param></params></methodResponse>"
        )
    except Exception as error:
        raise XvaError(f"ova.xml is not an XML-RPC value: {error}") from None
    if not isinstance(value, dict) or not isinstance(value.get("objects"), list):
        raise XvaError("ova.xml has no objects array")
    return value


# -- writing -------------------------------------------------------------------------------------


def _member(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    return info.tobuf(tarfile.USTAR_FORMAT)


def _padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


@dataclass(frozen=True)
class Disk:
    """A disk to export: `read_chunk(i)` gives its i-th 1 MiB chunk; `allocated` lists the
    chunk indices that may hold non-zero data (every other chunk is zeros and left out)."""

    ref_id: str
    virtual_size: int
    allocated: Sequence[int]
    read_chunk: Callable[[int], bytes]


def _file(name: str, data: bytes) -> Iterator[bytes]:
    yield _member(name, len(data))
    yield data
    yield _padding(len(data))


def write_xva(ova_xml: bytes, disks: Iterable[Disk]) -> Iterator[bytes]:
    """The uncompressed XVA: ova.xml, each disk's chunks with their checksums, the tar end."""
    yield from _file(OVA_XML, ova_xml)
    for disk in sorted(disks, key=lambda d: d.ref_id):
        last = max(0, -(-disk.virtual_size // CHUNK_SIZE) - 1)
        for index in sorted({0, last, *disk.allocated}):
            data = disk.read_chunk(index)
            name = f"{disk.ref_id}/{index:08d}"
            yield from _file(name, data)
            digest = xxhash.xxh64(data).hexdigest().upper().encode()
            yield from _file(f"{name}.xxhash", digest)
    yield END_OF_ARCHIVE


def compress(chunks: Iterable[bytes], method: Compression) -> Iterator[bytes]:
    """The stream compressed as a whole (`use_compression=zstd|gzip`), or as is."""
    if method is None:
        yield from chunks
        return
    compressor: Any = (
        zstandard.ZstdCompressor(level=3).compressobj()
        if method == "zstd"
        else zlib.compressobj(6, zlib.DEFLATED, 31)
    )
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


class Decompressor:
    """Undoes `compress`, recognising zstd and gzip by their magic and passing a plain tar."""

    def __init__(self) -> None:
        self._head = b""
        self._engine: Any = None
        self.method: Compression = None
        self._plain = False

    def feed(self, data: bytes) -> bytes:
        if self._engine is None and not self._plain:
            self._head += data
            if len(self._head) < 4:
                return b""
            data, self._head = self._head, b""
            if data.startswith(ZSTD_MAGIC):
                self._engine, self.method = zstandard.ZstdDecompressor().decompressobj(), "zstd"
            elif data.startswith(GZIP_MAGIC):
                self._engine, self.method = zlib.decompressobj(47), "gzip"
            else:
                self._plain = True
        if self._plain:
            return data
        try:
            return bytes(self._engine.decompress(data))
        except (zlib.error, zstandard.ZstdError) as error:
            raise XvaError(f"corrupt {self.method} stream: {error}") from None

    def finish(self) -> bytes:
        return self._head


# -- reading -------------------------------------------------------------------------------------


@dataclass
class _DiskProgress:
    counter: int = -1
    offset: int = 0
    chunk_size: int = 0


class XvaReader:
    """Push parser of an (optionally compressed) XVA.

    `feed(data)` returns events: `("ova", dict)` once ova.xml is read (always first), then
    `("chunk", ref_id, offset, data)` per verified disk chunk. `finish()` checks the archive
    ended properly. Raises XvaError on a malformed tar, a first member other than ova.xml,
    checksum mismatches, out-of-order chunks, or members too big to be chunks."""

    def __init__(self) -> None:
        self._decompressor = Decompressor()
        self._buffer = bytearray()
        self._member: tarfile.TarInfo | None = None
        self._pending: tuple[str, int, bytes] | None = None  # chunk awaiting its checksum
        self._disks: dict[str, _DiskProgress] = {}
        self.ova: dict[str, Any] | None = None
        self.ended = False

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        self._buffer += self._decompressor.feed(data)
        events: list[tuple[Any, ...]] = []
        while not self.ended and self._step(events):
            pass
        return events

    def _step(self, events: list[tuple[Any, ...]]) -> bool:
        if self._member is None:
            if len(self._buffer) < BLOCK:
                return False
            block = bytes(self._buffer[:BLOCK])
            del self._buffer[:BLOCK]
            if block == bytes(BLOCK):
                self._end()
                return False
            try:
                member = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.HeaderError as error:
                raise XvaError(f"corrupt tar header: {error}") from None
            if self.ova is None and member.name != OVA_XML:
                raise XvaError(f"not an XVA: the first member is {member.name!r}, not ova.xml")
            if member.size > MAX_MEMBER:
                raise XvaError(f"member {member.name!r} is too large ({member.size} bytes)")
            self._member = member
            return True
        member = self._member
        stored = member.size + (-member.size % BLOCK)
        if len(self._buffer) < stored:
            return False
        data = bytes(self._buffer[: member.size])
        del self._buffer[:stored]
        self._member = None
        self._on_member(member.name, data, events)
        return True

    def _on_member(self, name: str, data: bytes, events: list[tuple[Any, ...]]) -> None:
        if name == OVA_XML:
            if self.ova is not None:
                raise XvaError("ova.xml appears twice")
            self.ova = decode_ova_xml(data)
            events.append(("ova", self.ova))
            return
        ref_id, _, leaf = name.rpartition("/")
        counter_text, _, extension = leaf.partition(".")
        if not ref_id or len(counter_text) != 8 or not counter_text.isdigit():
            raise XvaError(f"unexpected member {name!r}")
        counter = int(counter_text)
        if extension:
            self._check_sum(name, ref_id, counter, extension, data)
            _, offset, chunk = self._pending or ("", 0, b"")
            self._pending = None
            if chunk:
                events.append(("chunk", ref_id, offset, chunk))
            return
        if self._pending is not None:
            raise XvaError(f"chunk {self._pending[0]!r} has no checksum file")
        disk = self._disks.setdefault(ref_id, _DiskProgress())
        if counter <= disk.counter:
            raise XvaError(f"chunk {name!r} is out of order")
        if disk.counter < 0:
            disk.chunk_size = len(data) or CHUNK_SIZE
        # Omitted counters are all-zero chunks of the first chunk's size; empty ones keep-alives.
        disk.offset += (counter - disk.counter - 1) * disk.chunk_size
        disk.counter = counter
        self._pending = (name, disk.offset, data)
        disk.offset += len(data)

    def _check_sum(self, name: str, ref_id: str, counter: int, extension: str, text: bytes) -> None:
        pending = self._pending
        if pending is None or pending[0] != f"{ref_id}/{counter:08d}":
            raise XvaError(f"checksum {name!r} does not follow its chunk")
        data = pending[2]
        if extension == "xxhash":
            expected = xxhash.xxh64(data).hexdigest().upper()
        elif extension == "checksum":
            expected = hashlib.sha1(data).hexdigest()
        else:
            raise XvaError(f"unknown checksum kind {name!r}")
        if text.decode("ascii", "replace").strip() != expected:
            raise XvaError(f"checksum mismatch on {pending[0]!r}")

    def _end(self) -> None:
        if self.ova is None:
            raise XvaError("not an XVA: the archive is empty")
        if self._pending is not None:
            raise XvaError(f"chunk {self._pending[0]!r} has no checksum file")
        self.ended = True

    def finish(self) -> dict[str, Any]:
        """Check the archive is complete; its ova.xml."""
        tail = self._decompressor.finish()
        if not self.ended:
            stage = (
                "an entry" if self._member is not None or self._buffer or tail else "the tar end"
            )
            raise XvaError(f"truncated XVA: the stream ended before {stage}")
        assert self.ova is not None
        return self.ova

    def disk_length(self, ref_id: str) -> int:
        """Bytes of the disk covered so far (chunk data and the zeros of omitted chunks)."""
        disk = self._disks.get(ref_id)
        return 0 if disk is None else disk.offset
