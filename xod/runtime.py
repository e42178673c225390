"""Process-level runtime tuning."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys


def release_memory() -> None:
    """Give freed heap memory back to the system (glibc's `malloc_trim(0)`); a no-op where
    there is no glibc. After a burst, CPython's freed buffers otherwise stay in the process."""
    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # musl and other libcs have no malloc_trim
        return
