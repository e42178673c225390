"""The VHD encoder and parser: round trips (Hypothesis), `qemu-img` reading what xod writes and
xod reading what `qemu-img` writes, byte for byte; truncated and corrupt files refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.formats.qemu import qemu_img_sync
from xod.formats import vhd

MiB = 1024 * 1024


@st.composite
def sparse_images(draw: st.DrawFn) -> bytes:
    """A raw image of whole sectors with a few non-zero runs (blocks left zero stay sparse)."""
    sectors = draw(st.integers(1, 3 * vhd.BLOCK_SIZE // vhd.SECTOR))
    image = bytearray(sectors * vhd.SECTOR)
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(0, len(image) - 1))
        data = draw(st.binary(min_size=1, max_size=2048))
        image[start : start + len(data)] = data[: len(image) - start]
    return bytes(image)


def encode_image(image: bytes, tmp_path: Path) -> bytes:
    raw = tmp_path / "image.raw"
    raw.write_bytes(image)
    with raw.open("rb") as file:
        return b"".join(vhd.raw_file_to_vhd(file, len(image)))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(image=sparse_images(), piece=st.integers(1, 3 * MiB))
def test_raw_vhd_raw_round_trip_in_any_pieces(image: bytes, piece: int, tmp_path: Path) -> None:
    encoded = encode_image(image, tmp_path)
    nonzero_blocks = {
        i
        for i in range(0, len(image), vhd.BLOCK_SIZE)
        if image[i : i + vhd.BLOCK_SIZE].strip(b"\0")
    }
    layout = vhd.VhdLayout(len(image), sorted(nonzero_blocks))
    assert len(encoded) == layout.length  # only the non-zero blocks are stored
    pieces = [encoded[i : i + piece] for i in range(0, len(encoded), piece)]
    assert b"".join(vhd.vhd_to_raw(pieces)) == image


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(image=sparse_images())
def test_qemu_reads_what_xod_writes(image: bytes, tmp_path: Path) -> None:
    (tmp_path / "x.vhd").write_bytes(encode_image(image, tmp_path))
    info = qemu_img_sync("info", "--output=json", tmp_path / "x.vhd")
    assert '"format": "vpc"' in info and f'"virtual-size": {len(image)}' in info
    qemu_img_sync("convert", "-f", "vpc", "-O", "raw", tmp_path / "x.vhd", tmp_path / "back.raw")
    assert (tmp_path / "back.raw").read_bytes() == image
    assert "identical" in qemu_img_sync(
        "compare", "-f", "raw", "-F", "vpc", tmp_path / "image.raw", tmp_path / "x.vhd"
    )


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(image=sparse_images())
def test_xod_reads_what_qemu_writes(image: bytes, tmp_path: Path) -> None:
    (tmp_path / "in.raw").write_bytes(image)
    qemu_img_sync("convert", "-f", "raw", "-O", "vpc", tmp_path / "in.raw", tmp_path / "q.vhd")
    decoded = b"".join(vhd.vhd_to_raw([(tmp_path / "q.vhd").read_bytes()]))
    # qemu rounds the virtual size up to a disk geometry: the tail is zeros.
    assert decoded[: len(image)] == image and not decoded[len(image) :].strip(b"\0")


def sample(tmp_path: Path) -> bytes:
    image = bytearray(5 * MiB)
    image[100:200] = b"x" * 100
    image[4 * MiB : 4 * MiB + 10] = b"y" * 10
    return encode_image(bytes(image), tmp_path)


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (lambda v: v[:300], "truncated VHD: the stream ended inside its footer"),
        (lambda v: v[:1000], "truncated VHD: the stream ended inside its header"),
        (
            lambda v: v[: len(v) // 2],
            "truncated VHD: block 0 .at byte 2048. is missing: 2 of 2 blocks",
        ),
        (lambda v: v[:-100], "truncated VHD: the trailing footer is missing"),
        (lambda v: b"notavhd!" + v[8:], "not a VHD: footer cookie"),
        (lambda v: v[:70] + b"\0" + v[71:], "corrupt VHD: footer checksum mismatch"),
        (lambda v: v[:600] + b"\1" + v[601:], "corrupt VHD: dynamic header checksum mismatch"),
        (lambda v: v[:-512] + b"\0" * 512, "not a VHD: footer cookie"),
    ],
)
def test_bad_vhds_are_refused_with_the_reason(tmp_path: Path, cut, reason: str) -> None:
    with pytest.raises(vhd.VhdError, match=reason):
        b"".join(vhd.vhd_to_raw([cut(sample(tmp_path))]))


def test_probe_validates_the_head_before_any_data(tmp_path: Path) -> None:
    encoded = sample(tmp_path)
    assert vhd.probe(encoded[:512]) == 1536  # the header is needed too
    footer, header = vhd.probe(encoded[:1536])  # type: ignore[misc]
    assert footer.virtual_size == 5 * MiB and header.table_offset == 1536
    with pytest.raises(vhd.VhdError, match="checksum"):
        vhd.probe(encoded[:600] + b"\7" + encoded[601:1536])


def test_fixed_and_oversized_disks_are_refused(tmp_path: Path) -> None:
    (tmp_path / "f.raw").write_bytes(bytes(MiB))
    qemu_img_sync(
        "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed",
        tmp_path / "f.raw", tmp_path / "f.vhd",
    )  # fmt: skip
    fixed = (tmp_path / "f.vhd").read_bytes()
    with pytest.raises(vhd.VhdError, match="only dynamic VHDs"):
        vhd.decode_footer(fixed[-512:])
    with pytest.raises(vhd.VhdError, match="exceeds the VHD limit"):
        next(vhd.encode(vhd.MAX_VIRTUAL_SIZE + 512, [], bytes))
