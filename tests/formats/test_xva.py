"""XVA writer and reader: round trips through every compression (Hypothesis), the layout
Python's `tarfile` sees, and malformed archives refused."""

from __future__ import annotations

import io
import tarfile

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from xod.formats import xva

MiB = xva.CHUNK_SIZE


def disk_of(size: int, chunks: dict[int, bytes]) -> xva.Disk:
    def read(index: int) -> bytes:
        length = min(MiB, size - index * MiB)
        return chunks.get(index, bytes(MiB)).ljust(MiB, b"\0")[:length]

    return xva.Disk("Ref:2", size, sorted(chunks), read)


def raw_of(disk: xva.Disk) -> bytes:
    return b"".join(disk.read_chunk(i) for i in range(-(-disk.virtual_size // MiB)))


OVA = xva.encode_ova_xml(
    {"xapi_major": 25, "export_vsn": 2},
    [{"class": "VDI", "id": "Ref:2", "snapshot": {"virtual_size": 2**40, "name_label": "d"}}],
)


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(1, 4 * MiB),
    chunks=st.dictionaries(st.integers(0, 3), st.binary(min_size=1, max_size=64), max_size=3),
    compression=st.sampled_from([None, "zstd", "gzip"]),
    piece=st.integers(1, 2 * MiB),
)
def test_round_trip(size: int, chunks: dict[int, bytes], compression, piece: int) -> None:
    chunks = {i: c for i, c in chunks.items() if i * MiB < size}
    disk = disk_of(size, chunks)
    stream = b"".join(xva.compress(xva.write_xva(OVA, [disk]), compression))
    reader = xva.XvaReader()
    events = []
    for start in range(0, len(stream), piece):
        events += reader.feed(stream[start : start + piece])
    ova = reader.finish()
    assert ova["objects"][0]["snapshot"]["virtual_size"] == str(2**40)  # int64 as a string
    image = bytearray(size)
    for _kind, ref_id, offset, data in events[1:]:
        assert ref_id == "Ref:2"
        image[offset : offset + len(data)] = data
    assert bytes(image) == raw_of(disk) and reader.disk_length("Ref:2") == size


def test_layout_as_tarfile_sees_it() -> None:
    disk = disk_of(3 * MiB + 5, {1: b"abc"})
    with tarfile.open(fileobj=io.BytesIO(b"".join(xva.write_xva(OVA, [disk])))) as archive:
        check_layout(archive)


def check_layout(archive: tarfile.TarFile) -> None:
    names = archive.getnames()
    # The first and the last chunk are always there; the zero chunk 2 is left out.
    assert names == [
        "ova.xml",
        "Ref:2/00000000", "Ref:2/00000000.xxhash",
        "Ref:2/00000001", "Ref:2/00000001.xxhash",
        "Ref:2/00000003", "Ref:2/00000003.xxhash",
    ]  # fmt: skip
    zero_sum = archive.extractfile("Ref:2/00000000.xxhash").read()
    assert zero_sum == b"87D2A1B6E1163EF1"  # XXH64 of 1 MiB of zeros, as XAPI writes it
    last = archive.extractfile("Ref:2/00000003").read()
    assert len(last) == 5
    assert archive.extractfile("Ref:2/00000003.xxhash").read() == (
        xxhash.xxh64(last).hexdigest().upper().encode()
    )


def test_bad_archives_are_refused() -> None:
    good = b"".join(xva.write_xva(OVA, [disk_of(MiB, {0: b"x"})]))
    corrupt = bytearray(good)
    corrupt[good.index(b"Ref:2/00000000\0") + 512 + 100] ^= 1  # a byte of the first chunk
    cases = {
        bytes(corrupt): "checksum mismatch on 'Ref:2/00000000'",
        good[: len(good) // 2]: "truncated XVA",
        good[512 * 3 :]: "corrupt tar header|not an XVA",
    }
    for data, reason in cases.items():
        with pytest.raises(xva.XvaError, match=reason):
            reader = xva.XvaReader()
            reader.feed(data)
            reader.finish()
