"""Dynamic VHD (Microsoft Virtual Hard Disk 1.0), streamed: what XAPI's `/export_raw_vdi` and
`/import_raw_vdi` speak with `format=vhd`, and what `qemu-img -O vpc` writes.

Layout written here (the order XAPI's vhd-tool streams, readable front to back): a copy of the
footer, the dynamic header, the block allocation table (BAT), each allocated 2 MiB block (a
512-byte sector bitmap then the data) in increasing order, and the footer again. All integers are
big-endian; footer and header carry a one's-complement byte-sum checksum.

The encoder needs the allocated blocks up front (the BAT precedes the data), so it takes a
block map; `VhdDecoder` is a push parser: fed the bytes of a stream as they arrive, it returns
the `(offset, data)` writes they complete, keeping at most one block in memory. Both refuse
what they cannot represent exactly, with the reason.
"""

from __future__ import annotations

import struct
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

SECTOR = 512
BLOCK_SIZE = 2 * 1024 * 1024
FOOTER_SIZE = 512
HEADER_SIZE = 1024
BITMAP_SIZE = 512  # 4096 sectors per 2 MiB block, one bit each, rounded to a sector
UNUSED = 0xFFFFFFFF
# XAPI refuses VHD exports above this (VDI_TOO_LARGE).
MAX_VIRTUAL_SIZE = 2040 * 1024**3

FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4
FOOTER_COOKIE = b"conectix"
HEADER_COOKIE = b"cxsparse"
# "tap\0" (XenServer's blktap) tells readers such as qemu to trust `current size` rather than
# the CHS geometry, so any whole number of sectors round-trips exactly.
CREATOR_APP = b"tap\x00"
CREATOR_VERSION = 0x00010003
CREATOR_HOST_OS = 0x5769326B  # "Wi2k"
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z
FULL_BITMAP = b"\xff" * BITMAP_SIZE
ZERO_BLOCK = bytes(BLOCK_SIZE)

_FOOTER = struct.Struct(">8sIIQI4sIIQQHBBII16sB427x")
_HEADER = struct.Struct(">8sQQIII4s16sI4x512s192s256x")
_FOOTER_CHECKSUM_AT = 64
_HEADER_CHECKSUM_AT = 36


class VhdError(ValueError):
    """Not a VHD this module can read or write; the message says why."""


@dataclass(frozen=True)
class Footer:
    virtual_size: int
    disk_type: int
    data_offset: int
    unique_id: bytes


@dataclass(frozen=True)
class Header:
    table_offset: int
    max_table_entries: int
    block_size: int


def checksum(buf: bytes, at: int) -> int:
    """One's complement of the byte sum, the 4 checksum bytes at `at` counted as zero."""
    return ~(sum(buf[:at]) + sum(buf[at + 4 :])) & 0xFFFFFFFF


def geometry(size: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) for `size` bytes (the VHD spec's appendix)."""
    total = min(-(-size // SECTOR), 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cyl_heads = total // spt
    else:
        spt = 17
        cyl_heads = total // spt
        heads = max(4, (cyl_heads + 1023) // 1024)
        if cyl_heads >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cyl_heads = total // spt
        if cyl_heads >= heads * 1024:
            spt, heads = 63, 16
            cyl_heads = total // spt
    return min(-(-cyl_heads // heads), 65535), heads, spt


def check_size(size: int) -> None:
    if size <= 0 or size % SECTOR:
        raise VhdError(f"virtual size {size} is not a positive multiple of {SECTOR} bytes")
    if size > MAX_VIRTUAL_SIZE:
        raise VhdError(f"virtual size {size} exceeds the VHD limit of {MAX_VIRTUAL_SIZE} bytes")


def encode_footer(
    size: int, unique_id: bytes | None = None, *, timestamp: float | None = None
) -> bytes:
    cylinders, heads, spt = geometry(size)
    stamp = int((time.time() if timestamp is None else timestamp) - VHD_EPOCH) & 0xFFFFFFFF
    fields = [
        FOOTER_COOKIE, 2, 0x00010000, FOOTER_SIZE, stamp, CREATOR_APP, CREATOR_VERSION,
        CREATOR_HOST_OS, size, size, cylinders, heads, spt, DYNAMIC, 0,
        unique_id or uuidlib.uuid4().bytes, 0,
    ]  # fmt: skip
    raw = _FOOTER.pack(*fields)
    fields[14] = checksum(raw, _FOOTER_CHECKSUM_AT)
    return _FOOTER.pack(*fields)


def decode_footer(buf: bytes) -> Footer:
    if len(buf) < FOOTER_SIZE:
        raise VhdError(f"truncated: a VHD footer is {FOOTER_SIZE} bytes, got {len(buf)}")
    fields = _FOOTER.unpack(buf[:FOOTER_SIZE])
    if fields[0] != FOOTER_COOKIE:
        raise VhdError(f"not a VHD: footer cookie is {fields[0]!r}, expected 'conectix'")
    if fields[14] != checksum(buf[:FOOTER_SIZE], _FOOTER_CHECKSUM_AT):
        raise VhdError("corrupt VHD: footer checksum mismatch")
    disk_type = fields[13]
    if disk_type == DIFFERENCING:
        raise VhdError("differencing VHDs are not supported (they need their parent)")
    if disk_type != DYNAMIC:
        raise VhdError(f"only dynamic VHDs can be streamed, this one has disk type {disk_type}")
    size = fields[9]
    if size % SECTOR:
        raise VhdError(f"corrupt VHD: virtual size {size} is not a whole number of sectors")
    return Footer(
        virtual_size=size, disk_type=disk_type, data_offset=fields[3], unique_id=fields[15]
    )


def encode_header(max_table_entries: int, table_offset: int = FOOTER_SIZE + HEADER_SIZE) -> bytes:
    fields = [
        HEADER_COOKIE, 0xFFFFFFFFFFFFFFFF, table_offset, 0x00010000, max_table_entries,
        BLOCK_SIZE, b"\0" * 4, bytes(16), 0, bytes(512), bytes(192),
    ]  # fmt: skip
    raw = _HEADER.pack(*fields)
    fields[6] = checksum(raw, _HEADER_CHECKSUM_AT).to_bytes(4, "big")
    return _HEADER.pack(*fields)


def decode_header(buf: bytes, footer: Footer) -> Header:
    if len(buf) < HEADER_SIZE:
        raise VhdError(f"truncated: a VHD dynamic header is {HEADER_SIZE} bytes, got {len(buf)}")
    fields = _HEADER.unpack(buf[:HEADER_SIZE])
    if fields[0] != HEADER_COOKIE:
        raise VhdError(f"corrupt VHD: header cookie is {fields[0]!r}, expected 'cxsparse'")
    if int.from_bytes(fields[6], "big") != checksum(buf[:HEADER_SIZE], _HEADER_CHECKSUM_AT):
        raise VhdError("corrupt VHD: dynamic header checksum mismatch")
    table_offset, entries, block_size = fields[2], fields[4], fields[5]
    if block_size < SECTOR or block_size & (block_size - 1) or block_size > 256 * 1024 * 1024:
        raise VhdError(f"corrupt VHD: block size {block_size} is not a power of two sectors")
    if entries < -(-footer.virtual_size // block_size):
        raise VhdError(f"corrupt VHD: {entries} BAT entries cannot map {footer.virtual_size} bytes")
    if table_offset < footer.data_offset + HEADER_SIZE or table_offset % SECTOR:
        raise VhdError(f"corrupt VHD: BAT offset {table_offset} overlaps the header")
    return Header(table_offset=table_offset, max_table_entries=entries, block_size=block_size)


def probe(buf: bytes) -> tuple[Footer, Header] | int:
    """The footer and header at the start of a VHD stream, or how many bytes are needed to
    tell. Raises VhdError on anything wrong with them."""
    footer = decode_footer(buf)
    needed = footer.data_offset + HEADER_SIZE
    if footer.data_offset < FOOTER_SIZE or footer.data_offset % SECTOR:
        raise VhdError(f"corrupt VHD: header offset {footer.data_offset} is not after the footer")
    if len(buf) < needed:
        return needed
    return footer, decode_header(buf[footer.data_offset : needed], footer)


def _bat_bytes(entries: int) -> int:
    return -(-entries * 4 // SECTOR) * SECTOR


# -- encoding ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VhdLayout:
    """Where everything of a streamed dynamic VHD goes, from its size and allocated blocks."""

    virtual_size: int
    allocated: Sequence[int]  # block indices, strictly increasing

    @property
    def entries(self) -> int:
        return -(-self.virtual_size // BLOCK_SIZE)

    @property
    def data_start(self) -> int:
        return FOOTER_SIZE + HEADER_SIZE + _bat_bytes(self.entries)

    @property
    def length(self) -> int:
        """The stream's total length in bytes."""
        return self.data_start + len(self.allocated) * (BITMAP_SIZE + BLOCK_SIZE) + FOOTER_SIZE

    def head(self, footer: bytes) -> bytes:
        bat = bytearray(b"\xff" * _bat_bytes(self.entries))
        sector = self.data_start // SECTOR
        previous = -1
        for index in self.allocated:
            if not previous < index < self.entries:
                raise VhdError(f"block {index} out of order or beyond the disk's end")
            struct.pack_into(">I", bat, index * 4, sector)
            sector += (BITMAP_SIZE + BLOCK_SIZE) // SECTOR
            previous = index
        return footer + encode_header(self.entries) + bytes(bat)


def encode(
    virtual_size: int,
    allocated: Sequence[int],
    read_block: Callable[[int], bytes],
    *,
    unique_id: bytes | None = None,
) -> Iterator[bytes]:
    """A dynamic VHD of `virtual_size` bytes whose blocks `allocated` (increasing 2 MiB block
    indices) hold `read_block(index)`; every other block reads as zeros."""
    check_size(virtual_size)
    layout = VhdLayout(virtual_size, allocated)
    footer = encode_footer(virtual_size, unique_id)
    yield layout.head(footer)
    for index in allocated:
        data = read_block(index)
        if len(data) > BLOCK_SIZE:
            raise VhdError(f"block {index} holds {len(data)} bytes, more than {BLOCK_SIZE}")
        yield FULL_BITMAP
        yield data
        if len(data) < BLOCK_SIZE:
            yield ZERO_BLOCK[len(data) :]
    yield footer


def raw_file_to_vhd(file: BinaryIO, virtual_size: int) -> Iterator[bytes]:
    """A seekable raw image as a dynamic VHD: one pass finds the non-zero blocks, a second
    streams them (memory: one block)."""
    entries = -(-virtual_size // BLOCK_SIZE)
    allocated = []
    for index in range(entries):
        file.seek(index * BLOCK_SIZE)
        if file.read(BLOCK_SIZE).strip(b"\0"):
            allocated.append(index)

    def read_block(index: int) -> bytes:
        file.seek(index * BLOCK_SIZE)
        return file.read(min(BLOCK_SIZE, virtual_size - index * BLOCK_SIZE))

    return encode(virtual_size, allocated, read_block)


# -- decoding ------------------------------------------------------------------------------------


def _mask_absent_sectors(data: bytes, bitmap: bytes) -> bytes:
    """The block's data with the sectors its bitmap marks absent zeroed (dynamic disks read
    them as zeros whatever the file holds there)."""
    out = bytearray(data)
    for sector in range(len(data) // SECTOR):
        if not bitmap[sector >> 3] & (0x80 >> (sector & 7)):
            out[sector * SECTOR : (sector + 1) * SECTOR] = bytes(SECTOR)
    return bytes(out)


class VhdDecoder:
    """Push parser of a dynamic VHD stream (blocks in file order, as XAPI and qemu write them).

    `feed(data)` returns the writes `(virtual offset, bytes)` the data completed; `finish()`
    checks the stream ended with its footer after every allocated block. Raises VhdError at the
    first inconsistency: bad cookie or checksum, BAT entries overlapping the metadata or each
    other, a truncated stream."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._position = 0  # stream offset of _buffer[0]
        self.footer: Footer | None = None
        self.header: Header | None = None
        self._blocks: list[tuple[int, int]] = []  # (file offset, block index), file order
        self._next = 0  # index into _blocks
        self._bat_read = False
        self._span = 0  # file bytes of one block: bitmap + data, sector-aligned
        self.written = 0  # data bytes emitted

    @property
    def virtual_size(self) -> int | None:
        return None if self.footer is None else self.footer.virtual_size

    def _take(self, start: int, length: int) -> bytes | None:
        """Bytes [start, start+length) of the stream once buffered; drops what precedes."""
        if start < self._position:
            raise VhdError(f"corrupt VHD: structure at byte {start} overlaps an earlier one")
        if start > self._position:  # a gap before the structure: nothing to keep from it
            skipped = min(start - self._position, len(self._buffer))
            del self._buffer[:skipped]
            self._position += skipped
        end = start + length
        if self._position + len(self._buffer) < end:
            return None
        data = bytes(self._buffer[start - self._position : end - self._position])
        del self._buffer[: end - self._position]
        self._position = end
        return data

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        writes: list[tuple[int, bytes]] = []
        while self._step(writes):
            pass
        # Past the last block only the trailing footer matters: keep its 512 bytes at most.
        if self.header is not None and self._next == len(self._blocks):
            excess = len(self._buffer) - FOOTER_SIZE
            if excess > 0:
                del self._buffer[:excess]
                self._position += excess
        return writes

    def _step(self, writes: list[tuple[int, bytes]]) -> bool:
        if self.footer is None:
            head = self._take(0, FOOTER_SIZE)
            if head is None:
                return False
            footer = decode_footer(head)
            if footer.data_offset < FOOTER_SIZE or footer.data_offset % SECTOR:
                raise VhdError(f"corrupt VHD: header offset {footer.data_offset} is invalid")
            self.footer = footer
            return True
        if self.header is None:
            raw = self._take(self.footer.data_offset, HEADER_SIZE)
            if raw is None:
                return False
            self.header = decode_header(raw, self.footer)
            return True
        if not self._bat_read:
            return self._read_bat()
        if self._next < len(self._blocks):
            return self._read_block(writes)
        return False

    def _read_bat(self) -> bool:
        assert self.header is not None and self.footer is not None
        header = self.header
        raw = self._take(header.table_offset, _bat_bytes(header.max_table_entries))
        if raw is None:
            return False
        self._bat_read = True
        used = -(-self.footer.virtual_size // header.block_size)
        entries = struct.unpack_from(f">{header.max_table_entries}I", raw)
        span = -(-(bitmap_size(header.block_size) + header.block_size) // SECTOR) * SECTOR
        blocks = []
        for index, sector in enumerate(entries):
            if sector == UNUSED:
                continue
            if index >= used:
                raise VhdError(f"corrupt VHD: BAT entry {index} lies beyond the virtual size")
            blocks.append((sector * SECTOR, index))
        blocks.sort()
        end = header.table_offset + len(raw)
        for offset, index in blocks:
            if offset < end:
                raise VhdError(f"corrupt VHD: block {index} at byte {offset} overlaps other data")
            end = offset + span
        self._blocks = blocks
        self._span = span
        return True

    def _read_block(self, writes: list[tuple[int, bytes]]) -> bool:
        assert self.header is not None and self.footer is not None
        offset, index = self._blocks[self._next]
        raw = self._take(offset, self._span)
        if raw is None:
            return False
        self._next += 1
        block_size = self.header.block_size
        bitmap_bytes = bitmap_size(block_size)
        start = index * block_size
        length = min(block_size, self.footer.virtual_size - start)
        data = raw[bitmap_bytes : bitmap_bytes + length]
        bitmap = raw[:bitmap_bytes]
        if bitmap.count(0xFF) != len(bitmap):
            data = _mask_absent_sectors(data, bitmap)
        writes.append((start, data))
        self.written += len(data)
        return True

    def finish(self) -> Footer:
        """Check the stream is complete; the footer."""
        if self.footer is None or self.header is None or not self._bat_read:
            stage = "footer" if self.footer is None else "header" if self.header is None else "BAT"
            raise VhdError(f"truncated VHD: the stream ended inside its {stage}")
        if self._next < len(self._blocks):
            offset, index = self._blocks[self._next]
            raise VhdError(
                f"truncated VHD: block {index} (at byte {offset}) is missing: "
                f"{len(self._blocks) - self._next} of {len(self._blocks)} blocks never arrived"
            )
        tail = bytes(self._buffer[-FOOTER_SIZE:])
        if len(tail) < FOOTER_SIZE:
            raise VhdError("truncated VHD: the trailing footer is missing")
        footer = decode_footer(tail)
        if footer.virtual_size != self.footer.virtual_size:
            raise VhdError("corrupt VHD: the trailing footer disagrees with the first one")
        return footer


def bitmap_size(block_size: int) -> int:
    """Sector bitmap bytes of a block: one bit per sector, rounded up to a sector."""
    return -(-(block_size // SECTOR) // 8 // SECTOR) * SECTOR


def vhd_to_raw(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The raw image of a VHD stream, in order (zeros for unallocated blocks). The VHD's blocks
    must be laid out in increasing virtual order, as every streamed VHD is."""
    decoder = VhdDecoder()
    written = 0
    for chunk in chunks:
        for offset, data in decoder.feed(chunk):
            if offset < written:
                raise VhdError("blocks out of virtual order: this VHD needs random access")
            yield from _zeros(offset - written)
            yield data
            written = offset + len(data)
    footer = decoder.finish()
    yield from _zeros(footer.virtual_size - written)


def _zeros(count: int) -> Iterator[bytes]:
    while count > 0:
        step = min(count, BLOCK_SIZE)
        yield ZERO_BLOCK[:step]
        count -= step
