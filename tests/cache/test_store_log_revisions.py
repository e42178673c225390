"""The store fed by a change log (xod/cluster/replica.py): each batch at the revision the log
gives it, with gaps; resume and `Gone` work as with the store's own counter."""

from __future__ import annotations

import pytest

from xod.cache.store import ChangeBatch, Gone, ObjectStore


def _obj(object_id: str, **fields) -> dict:
    return {"id": object_id, "type": "VM", "$pool": "p1", **fields}


def test_batches_take_the_given_revisions_and_resume_across_gaps():
    store = ObjectStore()
    batches: list[ChangeBatch] = []
    store.subscribe(batches.append)
    store.apply("p1", {"a": _obj("a"), "b": _obj("b")}, revision=5)
    store.apply("p1", {"a": _obj("a", name="x")}, revision=9)
    assert [b.revision for b in batches] == [5, 9] and store.revision == 9
    # A revision in a gap resumes like the batch before it.
    for since in (5, 6, 8):
        resumed = store.changes_since(since)
        assert resumed.revision == 9 and set(resumed.enter) == {"a"} and resumed.exit == []
    with pytest.raises(Gone):
        store.changes_since(10)


def test_a_batch_that_changes_nothing_moves_the_revision_on_silently():
    store = ObjectStore()
    batches: list[ChangeBatch] = []
    store.subscribe(batches.append)
    store.apply("p1", {"a": _obj("a")}, revision=3)
    assert store.apply("p1", {"a": _obj("a")}, revision=7) is None
    assert store.revision == 7 and [b.revision for b in batches] == [3]
    assert not store.changes_since(7) and not store.changes_since(3)


def test_a_revision_not_after_the_current_one_is_refused():
    store = ObjectStore()
    store.apply("p1", {"a": _obj("a")}, revision=4)
    with pytest.raises(ValueError, match="not after"):
        store.apply("p1", {"b": _obj("b")}, revision=4)
    assert "b" not in store
