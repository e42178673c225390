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


def test_tune_gc_sets_rarer_young_collections(restored_gc):
    runtime.tune_gc()
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
