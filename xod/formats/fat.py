"""A small FAT image holding a few files under a volume label: the cloud-init `cidata` drive.

pyfatfs builds the filesystem; it works on a file, so the image is made in a temporary file
(the drive is a few MiB) and read back whole.
"""

from __future__ import annotations

import os
import struct
import tempfile
import warnings

# pyfatfs leaves the BIOS geometry at zero, which mtools (and some firmware) refuse; these are
# mkfs.fat's values for a disk of this size.
SECTORS_PER_TRACK = 32
HEADS = 64


def fat_image(size: int, label: str, files: dict[str, bytes]) -> bytes:
    """A FAT12/16 image of `size` bytes labelled `label` (stored upper-case, as FAT keeps it)
    holding `files` (paths with `/`; their folders are made)."""
    # Imported on first use, warnings silenced: pyfatfs runs on PyFilesystem2, whose import of
    # pkg_resources warns on stderr, which must stay the daemon's JSON log lines only.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pyfatfs.PyFat import PyFat
        from pyfatfs.PyFatFS import PyFatFS

    fat_type = PyFat.FAT_TYPE_FAT12 if size <= 16 * 2**20 else PyFat.FAT_TYPE_FAT16
    fd, path = tempfile.mkstemp(prefix="xod-fat-")
    try:
        os.close(fd)
        maker = PyFat()
        maker.mkfs(path, fat_type, size=size, label=label.upper())
        maker.close()
        fs = PyFatFS(path, preserve_case=True)
        try:
            for name, content in files.items():
                folder = os.path.dirname(name)
                if folder:
                    fs.makedirs(folder, recreate=True)
                fs.writebytes("/" + name.lstrip("/"), content)
        finally:
            fs.close()
        with open(path, "rb") as image:
            return _conform(bytearray(image.read()))
    finally:
        os.unlink(path)


def _conform(image: bytearray) -> bytes:
    """Two fixes to pyfatfs's output so that strict readers (mtools) accept it: the geometry,
    and FAT entry 1 all ones (pyfatfs writes 0xFF0 there; readers check the bytes after the
    media byte are 0xFF)."""
    struct.pack_into("<HH", image, 24, SECTORS_PER_TRACK, HEADS)  # BPB_SecPerTrk, BPB_NumHeads
    sector_size, _, reserved, fats = struct.unpack_from("<HBHB", image, 11)
    (fat_sectors,) = struct.unpack_from("<H", image, 22)
    ones = 2 if image[54:59] == b"FAT12" else 3  # entries 0 and 1 span 3 bytes, or 4
    for index in range(fats):
        start = (reserved + index * fat_sectors) * sector_size
        image[start + 1 : start + 1 + ones] = b"\xff" * ones
    return bytes(image)
