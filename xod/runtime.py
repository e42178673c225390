"""Process-wide memory and garbage-collector tuning, switched on by the daemon (xod/daemon.py).

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


def tune_gc() -> None:
    """GC thresholds for a process holding millions of long-lived small objects (a pool's XO
    objects): with the defaults, a burst of events triggers many collections that walk them all
    for nothing. Rarer young-generation collections make the event ingest ~20 % faster
    (bench/cache_ingest.py)."""
    gc.set_threshold(50_000, 50, 100)


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
