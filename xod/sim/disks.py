"""What the simulated VDIs hold: sparse content, deterministic per VDI, plus what imports wrote.

A VDI's base content is computed, never stored: 1 MiB chunk `i` is non-zero with probability
`density` (decided by a hash of the VDI's uuid and `i`), and then holds that hash repeated. An
import replaces the whole content: the VDI forgets its base, and the chunks written with any
non-zero byte go to an anonymous sparse temporary file (one per VDI, removed with the VDI), so
memory stays bounded by the number of chunks, whatever the sizes moved.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from xod.sim.db import Database

CHUNK = 1024 * 1024
ZERO_CHUNK = bytes(CHUNK)
_ZEROS = memoryview(ZERO_CHUNK)
DEFAULT_DENSITY = 1 / 64


@dataclass
class _Written:
    file: BinaryIO
    chunks: set[int] = field(default_factory=set)  # chunks stored in `file`


def _digest(uuid: str, index: int) -> bytes:
    return hashlib.blake2b(f"{uuid}:{index}".encode(), digest_size=32).digest()


class Disks:
    def __init__(self, db: Database, density: float = DEFAULT_DENSITY) -> None:
        self._db = db
        self.density = density
        self._written: dict[str, _Written] = {}  # VDI ref -> content written by imports
        db.listeners.append(self._on_change)

    def _on_change(self, _gen: int, cls: str, ref: str, operation: str, _snap: Any) -> None:
        if cls == "VDI" and operation == "del":
            written = self._written.pop(ref, None)
            if written is not None:
                written.file.close()

    def size_of(self, vdi: str) -> int:
        return int(self._db.get("VDI", vdi)["virtual_size"])

    def _chunks(self, vdi: str) -> int:
        return -(-self.size_of(vdi) // CHUNK)

    def _base_nonzero(self, uuid: str, index: int) -> bool:
        return int.from_bytes(_digest(uuid, index)[:8], "big") < self.density * 2**64

    def allocated(self, vdi: str) -> list[int]:
        """The chunk indices that may hold non-zero bytes, increasing."""
        written = self._written.get(vdi)
        if written is not None:
            return sorted(written.chunks)
        uuid = self._db.get("VDI", vdi)["uuid"]
        return [i for i in range(self._chunks(vdi)) if self._base_nonzero(uuid, i)]

    def read(self, vdi: str, index: int) -> bytes:
        """Chunk `index` (the last one may be shorter: the virtual size is its end)."""
        size = self.size_of(vdi)
        length = max(0, min(CHUNK, size - index * CHUNK))
        written = self._written.get(vdi)
        if written is not None:
            if index not in written.chunks:
                return ZERO_CHUNK[:length]
            return os.pread(written.file.fileno(), length, index * CHUNK)
        uuid = self._db.get("VDI", vdi)["uuid"]
        if not self._base_nonzero(uuid, index):
            return ZERO_CHUNK[:length]
        return (_digest(uuid, index) * (CHUNK // 32))[:length]

    def reset(self, vdi: str) -> None:
        """The VDI now reads as zeros (an import replaces the whole content)."""
        self._db.get("VDI", vdi)
        old = self._written.pop(vdi, None)
        if old is not None:
            old.file.close()
        self._written[vdi] = _Written(tempfile.TemporaryFile())  # noqa: SIM115 - kept open

    def write(self, vdi: str, offset: int, data: bytes) -> None:
        """Write at `offset` of a VDI that was `reset`; all-zero chunks are not stored."""
        written = self._written[vdi]
        size = self.size_of(vdi)
        if offset < 0 or offset + len(data) > size:
            raise ValueError(f"write of {len(data)} bytes at {offset} exceeds the VDI's {size}")
        view = memoryview(data)
        fd = written.file.fileno()
        while view:
            index, within = divmod(offset, CHUNK)
            piece = view[: CHUNK - within]
            if index not in written.chunks:
                if piece == _ZEROS[: len(piece)]:
                    offset += len(piece)
                    view = view[len(piece) :]
                    continue
                written.chunks.add(index)
            os.pwrite(fd, piece, offset)
            offset += len(piece)
            view = view[len(piece) :]

    def close(self) -> None:
        for written in self._written.values():
            written.file.close()
        self._written.clear()
