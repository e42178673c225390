"""xod/runtime.py: the process-wide switches the daemon owns."""

from __future__ import annotations

import gc

import pytest

from xod import runtime


@pytest.fixture
def restored_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    gc.enable()


def test_bulk_load_turns_gc_off_inside_then_freezes_what_was_loaded(restored_gc):
    gc.unfreeze()
    with runtime.bulk_load():
        assert not gc.isenabled()
        loaded = [{"id": str(i)} for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(loaded)


def test_a_failed_bulk_load_restores_gc_and_freezes_nothing(restored_gc):
    gc.unfreeze()
    with pytest.raises(RuntimeError), runtime.bulk_load():
        raise RuntimeError("load failed")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_bulk_load_keeps_gc_off_when_it_was_off(restored_gc):
    gc.disable()
    with runtime.bulk_load():
        pass
    assert not gc.isenabled()


def test_tune_process_sets_rarer_young_collections(restored_gc):
    runtime.tune_process()
    assert gc.get_threshold()[0] == 50_000


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def test_release_memory_gives_freed_heap_pages_back():
    """Freed blocks pinned between live ones stay in glibc's heap until `release_memory`."""
    blocks = [bytes(4000) + bytes([i % 256]) for i in range(10_000)]  # ~40 MiB of C heap
    pinned = blocks[::50]
    del blocks
    before = _rss_bytes()
    runtime.release_memory()
    assert before - _rss_bytes() > 20 * 2**20
    assert len(pinned) == 200


_FREED_LATE = """
import sys
from xod import runtime
if sys.argv[1] == "tuned":
    runtime.tune_process()
def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmRSS:"))
# A big block freed (an answer body): glibc raises its thresholds unless they are pinned.
body = bytearray(8 * 2**20)
body[:] = b"x" * len(body)
del body
before = rss()
frames, kept = [], []
for i in range(40):  # notification frames (40 MiB), between long-lived objects
    frames.append(bytearray(2**20))
    frames[-1][:] = b"f" * 2**20
    kept.append([bytes(3000 + i) for _ in range(3)])
del frames
print(rss() - before)
"""


def test_tuned_process_gives_big_buffers_back_when_they_are_freed():
    """Buffers freed after the sync's trim (frames a slow client read late) must not stay."""
    import subprocess
    import sys

    def kept_after_free(mode: str) -> int:
        result = subprocess.run(
            [sys.executable, "-c", _FREED_LATE, mode], capture_output=True, check=True, timeout=60
        )
        return int(result.stdout)

    assert kept_after_free("default") > 30 * 2**20  # what glibc does by itself
    assert kept_after_free("tuned") < 4 * 2**20
