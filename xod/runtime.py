"""Process-wide memory and garbage-collector tuning, switched on by the daemon (xod/daemon.py,
xod/lifecycle.py).

These change the whole interpreter (GC thresholds, a frozen heap, the C heap's free pages), so
no library part of xod does them by itself: the cache takes a `bulk_load` hook that does nothing
by default (xod/cache/sync.py), and only the daemon and the benchmarks pass `bulk_load` from
here. Tests and the simulator run with the interpreter's defaults.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
from collections.abc import Callable, Iterator


def tune_process() -> None:
    """The daemon's settings, at start.

    GC thresholds for a process holding millions of long-lived small objects (a pool's XO
    objects): with the defaults, a burst of events triggers many collections that walk them all
    for nothing. Rarer young-generation collections make the event ingest ~20 % faster
    (bench/cache_ingest.py). And glibc's malloc thresholds pinned, so that memory kept after a
    sync does not depend on when its buffers are freed (`_pin_malloc_thresholds`)."""
    gc.set_threshold(50_000, 50, 100)
    _pin_malloc_thresholds()


@contextlib.contextmanager
def bulk_load() -> Iterator[None]:
    """Around one synchronous load of many long-lived objects (a pool's full sync).

    Inside, the cyclic GC is off: its passes over a fast-growing heap (decoding records,
    building objects) cost more than the work itself, and nothing made there is cyclic garbage.
    After a load that succeeded, everything alive is frozen (moved out of the GC's view, so it
    stops rescanning the cache on every full collection; no collection first, which would cost
    ~0.3 s on a big heap), and the C heap's free pages are given back (`release_memory`)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
    gc.freeze()
    release_memory()


# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Above asyncio's 256 KiB receive buffers, which then keep reusing heap memory (no system call
# per read); below a pool's answer bodies and the notification frames of a big change batch.
_MMAP_THRESHOLD = 512 * 1024
# glibc's own default: the heap's free top beyond this goes back to the system at once.
_TRIM_THRESHOLD = 128 * 1024


def _pin_malloc_thresholds() -> None:
    """Big buffers get their own mapping, unmapped when freed, whenever they are freed.

    By default glibc raises its mmap threshold to the size of any mapped block freed (up to
    32 MiB) and its trim threshold to twice that. After the first answer body of a cold sync is
    freed, the next big buffers (other answers, the notification frames of the initial batch)
    come from the heap instead, and the heap keeps them once freed. `release_memory` after the
    load only returns what is free by then: frames still waiting for a slow client (a loaded
    machine) were freed later and stayed, 40 MiB for a 10k-VM pool (bench/cache_sync.py
    --load-compare). Pinned thresholds make the memory kept independent of that timing."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc only
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


_malloc_trim = _find_malloc_trim()


def release_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's `malloc_trim`; elsewhere a
    no-op). After a burst of big, short-lived buffers (a cold sync's answers and decode tables,
    a burst of client traffic), glibc keeps the freed pages in the middle of its heap."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def reclaim_memory() -> None:
    """Free what died in reference cycles, then give the freed pages back (after a burst of
    client traffic: a closed connection's objects are cyclic, and the daemon makes full
    collections rare). Frozen objects (the cache after its load) are not rescanned."""
    gc.collect()
    release_memory()
