"""The revisioned store: net batches, indexes, history/resume, resync differences."""

from __future__ import annotations

import pytest

from tests.cache.sample import build_sample_pool
from xod.cache.objects import PoolObjects, transform_pool
from xod.cache.store import ChangeBatch, Gone, ObjectStore, replay


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _obj(object_id: str, object_type: str = "VM", pool: str = "p1", **fields) -> dict:
    return {"id": object_id, "type": object_type, "$pool": pool, **fields}


def test_batches_hold_net_changes_and_indexes_follow():
    store = ObjectStore()
    batches: list[ChangeBatch] = []
    store.subscribe(batches.append)
    first = store.apply("p1", {"a": _obj("a"), "b": _obj("b", "host")})
    assert first is not None and first.revision == 1 == store.revision
    assert set(first.enter) == {"a", "b"} and first.exit == []
    assert set(store.by_type("VM")) == {"a"} and set(store.by_pool("p1")) == {"a", "b"}
    # An unchanged object is not a change; an empty change set makes no batch.
    assert store.apply("p1", {"a": _obj("a")}) is None
    assert store.revision == 1
    # A type change moves the object between indexes.
    batch = store.apply("p1", {"a": _obj("a", "VM-template"), "b": None, "ghost": None})
    assert batch is not None and batch.revision == 2
    assert list(batch.enter) == ["a"] and batch.exit == ["b"]
    assert set(store.by_type("VM")) == set() and set(store.by_type("VM-template")) == {"a"}
    assert store.get("b") is None and "b" not in store.by_pool("p1")
    assert [b.revision for b in batches] == [1, 2]
    assert replay(batches) == dict(store.objects)


def test_listener_sees_updated_store_and_failures_are_isolated():
    store = ObjectStore()
    seen = []

    def broken(batch):
        raise RuntimeError("listener bug")

    store.subscribe(broken)
    unsubscribe = store.subscribe(lambda batch: seen.append((batch.revision, len(store))))
    store.apply("p1", {"a": _obj("a")})
    unsubscribe()
    store.apply("p1", {"b": _obj("b")})
    assert seen == [(1, 1)]


def test_changes_since_and_gone():
    clock = FakeClock()
    store = ObjectStore(history_seconds=10, history_changes=3, clock=clock)
    store.apply("p1", {"a": _obj("a", v=1)})  # r1
    store.apply("p1", {"b": _obj("b")})  # r2
    store.apply("p1", {"a": _obj("a", v=2), "b": None})  # r3
    since1 = store.changes_since(1)
    assert since1.revision == 3
    assert since1.enter == {"a": _obj("a", v=2)} and since1.exit == ["b"]
    since0 = store.changes_since(0)
    assert since0.enter == {"a": _obj("a", v=2)} and since0.exit == ["b"]
    assert not store.changes_since(3)
    with pytest.raises(Gone):
        store.changes_since(4)
    # Old batches go only when they are BOTH older than 10 s AND beyond 3 changes.
    clock.now += 5
    store.apply("p1", {"c": _obj("c")})  # r4
    assert store.oldest_revision == 0
    clock.now += 6  # r1..r3 are now older than 10 s
    store.apply("p1", {"d": _obj("d")})  # r5: total 6 changes → drop while ≥ 3 remain
    assert store.oldest_revision == 2
    with pytest.raises(Gone):
        store.changes_since(1)
    resumed = store.changes_since(2)
    assert set(resumed.enter) == {"a", "c", "d"} and resumed.exit == ["b"]


def test_history_keeps_recent_batches_whatever_their_count():
    clock = FakeClock()
    store = ObjectStore(history_seconds=75, history_changes=2, clock=clock)
    for i in range(50):
        store.apply("p1", {f"o{i}": _obj(f"o{i}")})
    assert store.oldest_revision == 0  # all younger than 75 s
    clock.now += 100
    store.apply("p1", {"last": _obj("last")})
    assert store.oldest_revision >= 49
    assert set(store.changes_since(store.oldest_revision).enter) >= {"last"}


def test_replace_pool_emits_exactly_the_differences():
    p = build_sample_pool()
    store = ObjectStore()
    pool_id = p.uuid("pool")
    store.replace_pool(pool_id, transform_pool(p.records))
    store.apply("other-pool", {"x": _obj("x", pool="other-pool")})
    # While "disconnected": one VM renamed, one VIF gone (with its reverse refs), one task added.
    p.record("VM", "vm-halted")["name_label"] = "renamed"
    del p.records["VIF"][p.ref("vif-running")]
    p.record("VM", "vm-running")["VIFs"] = []
    p.record("network", "net0")["VIFs"] = []
    p.add("task", "task-new", name_label="new", status="pending")
    batch = store.replace_pool(pool_id, transform_pool(p.records))
    assert batch is not None
    assert set(batch.enter) == {
        p.uuid("vm-halted"),
        p.uuid("vm-running"),
        p.uuid("net0"),
        p.uuid("task-new"),
    }
    assert batch.exit == [p.uuid("vif-running")]
    assert store.replace_pool(pool_id, transform_pool(p.records)) is None
    dropped = store.drop_pool(pool_id)
    assert dropped is not None and len(dropped.exit) == len(transform_pool(p.records))
    assert set(store.objects) == {"x"}


def test_incremental_batches_replayed_rebuild_the_store():
    p = build_sample_pool()
    objects = PoolObjects()
    store = ObjectStore()
    batches: list[ChangeBatch] = []
    store.subscribe(batches.append)
    store.replace_pool(p.uuid("pool"), objects.load(p.records))
    p.record("VM", "vm-running")["power_state"] = "Paused"
    p.record("VM_metrics", "vm-running-metrics")["VCPUs_number"] = 3
    store.apply(
        p.uuid("pool"),
        objects.apply([p.event("VM", "vm-running"), p.event("VM_metrics", "vm-running-metrics")]),
    )
    assert replay(batches) == dict(store.objects) == transform_pool(p.records)
    assert store.get(p.uuid("vm-running"))["CPUs"]["number"] == 3
