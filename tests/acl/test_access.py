"""Access (xod/api/access.py): the global levels, checks through inheritance, views shared by
users with the same grants, and the per-user cache with its invalidation."""

from __future__ import annotations

import pytest

from xod.acl.roles import ROLES
from xod.api.access import Access, View
from xod.api.errors import ApiError
from xod.cache.store import ObjectStore
from xod.store import Acl, Store, User


@pytest.fixture
def objects() -> ObjectStore:
    cache = ObjectStore()
    cache.apply(
        "pool",
        {
            "pool": {"id": "pool", "type": "pool", "$pool": "pool"},
            "host": {"id": "host", "type": "host", "$pool": "pool"},
            "vm": {"id": "vm", "type": "VM", "$container": "host", "$pool": "pool"},
            "vm2": {"id": "vm2", "type": "VM", "$container": "pool", "$pool": "pool"},
            "sr": {"id": "sr", "type": "SR", "$container": "pool", "$pool": "pool"},
        },
    )
    return cache


def user(store: Store, email: str, permission: str = "none") -> User:
    return store.users.create(email, None, permission)


def test_global_levels(store: Store, objects: ObjectStore) -> None:
    access = Access(store, objects)
    admin, writer = user(store, "a", "admin"), user(store, "w", "write")
    reader, nobody = user(store, "r", "read"), user(store, "n", "user")
    for permission in ("view", "operate", "administrate"):
        assert access.can(admin, "vm", permission) and access.can(writer, "vm", permission)
        assert not access.can(nobody, "vm", permission)
        assert not access.can(None, "vm", permission)
    assert access.can(reader, "vm", "view") and not access.can(reader, "vm", "operate")
    store.acls.add(reader.id, "vm", "operator")
    access.changed([reader.id])
    assert access.can(reader, "vm", "operate") and not access.can(reader, "vm", "administrate")
    assert access.view_of(admin) is None
    assert access.view_of(writer) is None
    assert access.view_of(reader) is None
    assert isinstance(access.view_of(nobody), View)


def test_check_raises_xo_unauthorized_with_the_object(store: Store, objects: ObjectStore) -> None:
    access = Access(store, objects)
    viewer = user(store, "v")
    store.acls.add(viewer.id, "host", "viewer")
    access.check(viewer, "vm", "view")  # through the host
    with pytest.raises(ApiError) as refused:
        access.check(viewer, "vm", "operate")
    assert refused.value.to_json() == {
        "message": "not enough permissions",
        "code": 2,
        "data": {"permission": "operate", "object": {"id": "vm", "type": "VM"}},
    }
    with pytest.raises(ApiError) as unknown:
        access.check(viewer, "gone", "view")
    assert unknown.value.data == {"permission": "view", "object": {"id": "gone"}}


def test_group_acls_apply_to_members(store: Store, objects: ObjectStore) -> None:
    access = Access(store, objects)
    ann = user(store, "ann")
    ops = store.groups.create("ops")
    store.acls.add(ops.id, "pool", "viewer")
    assert not access.can(ann, "sr", "view")
    store.groups.add_user(ops.id, ann.id)
    access.changed(access.members_of([ops.id]))
    # `ann` is the record from before the membership: the store's current one counts.
    assert access.can(ann, "sr", "view")
    assert access.members_of([ops.id, "someone"]) == {ann.id, "someone"}


def test_grants_are_cached_until_changed(store: Store, objects: ObjectStore) -> None:
    access = Access(store, objects)
    ann, bob = user(store, "ann"), user(store, "bob")
    store.acls.add(ann.id, "vm", "viewer")
    grants = access.grants_of(ann)
    assert grants == {"vm": frozenset({"view"})}
    bob_grants = access.grants_of(bob)
    store.acls.add(ann.id, "vm2", "admin")
    # Not told yet: the cached grants stay (this is what makes checks cheap).
    assert access.grants_of(ann) is grants
    seen: list[frozenset[str] | None] = []
    unsubscribe = access.subscribe(seen.append)
    access.changed([ann.id])
    assert seen == [frozenset({ann.id})]
    assert access.grants_of(ann) == {
        "vm": frozenset({"view"}),
        "vm2": frozenset({"view", "operate", "administrate"}),
    }
    assert access.grants_of(bob) is bob_grants  # others' entries kept
    access.changed(None)
    assert seen[-1] is None and access.grants_of(bob) is not bob_grants
    unsubscribe()
    access.changed(None)
    assert len(seen) == 2


def test_a_failing_listener_does_not_stop_the_others(store: Store, objects: ObjectStore) -> None:
    access = Access(store, objects)
    seen: list[frozenset[str] | None] = []

    def broken(_: frozenset[str] | None) -> None:
        raise RuntimeError("boom")

    access.subscribe(broken)
    access.subscribe(seen.append)
    access.changed(["x"])
    assert seen == [frozenset({"x"})]


def test_views_are_shared_by_users_with_the_same_view_grants(
    store: Store, objects: ObjectStore
) -> None:
    access = Access(store, objects)
    ann, bob, cid = user(store, "ann"), user(store, "bob"), user(store, "cid")
    store.acls.add(ann.id, "host", "viewer")
    store.acls.add(bob.id, "host", "admin")  # more than view: the same visible objects
    store.acls.add(cid.id, "vm2", "viewer")
    views = [access.view_of(u) for u in (ann, bob, cid)]
    assert views[0] == views[1] and hash(views[0]) == hash(views[1])
    assert views[0] is not None and views[0].key == views[1].key
    assert views[0] != views[2]
    assert views[0].viewable == frozenset({"host"})
    visible = {i for i in objects.objects if access.visible(ann, i)}
    assert visible == {"host", "vm"}
    assert {i for i in objects.objects if access.visible(cid, i)} == {"vm2"}
    # The view is cached too, and dropped with the grants.
    assert access.view_of(ann) is views[0]
    store.acls.add(ann.id, "sr", "viewer")
    access.changed([ann.id])
    assert access.view_of(ann) != views[0]


def test_resource_set_objects_are_visible_to_its_subjects(
    store: Store, objects: ObjectStore
) -> None:
    access = Access(store, objects)
    ann, bob = user(store, "ann"), user(store, "bob")
    ops = store.groups.create("ops")
    store.groups.add_user(ops.id, bob.id)
    store.resource_sets.create("s", subjects=[ann.id, ops.id], objects=["sr"])
    for member in (ann, bob):
        view = access.view_of(member)
        assert view is not None and view.resource_set_objects == {"sr"}
        assert {i for i in objects.objects if access.visible(member, i)} == {"sr"}
        # Seen, not acted on.
        assert not access.can(member, "sr", "view")


def test_a_groups_acls_are_read_once_for_all_its_members(
    store: Store, objects: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = Access(store, objects)
    members = [user(store, f"m{i}") for i in range(3)]
    ops = store.groups.create("ops")
    store.groups.set_users(ops.id, [m.id for m in members])
    store.acls.add(ops.id, "pool", "viewer")
    store.acls.add(members[0].id, "vm2", "admin")
    queried: list[list[str]] = []
    read = store.acls.for_subjects

    def counted(subjects: list[str]) -> list[Acl]:
        queried.append(list(subjects))
        return read(subjects)

    monkeypatch.setattr(store.acls, "for_subjects", counted)
    grants = [access.grants_of(m) for m in members]
    assert queried == [[members[0].id, ops.id], [members[1].id], [members[2].id]]
    assert grants[0] == {"pool": frozenset({"view"}), "vm2": frozenset(ROLES["admin"])}
    assert grants[1] == grants[2] == {"pool": frozenset({"view"})}

    # The group's ACLs change, and the writer says so: only that subject is read again.
    store.acls.add(ops.id, "sr", "operator")
    queried.clear()
    access.changed([m.id for m in members], subjects=[ops.id])
    assert access.grants_of(members[1])["sr"] == frozenset({"view", "operate"})
    assert queried == [[ops.id]]
    # A writer that does not say which subjects changed: every subject is read again.
    store.acls.remove(ops.id, "sr", "operator")
    access.changed([members[2].id])
    queried.clear()
    assert "sr" not in access.grants_of(members[2])
    assert queried == [[members[2].id, ops.id]]
    # A membership change names no subject: the group's cached ACLs stay.
    store.groups.remove_user(ops.id, members[1].id)
    queried.clear()
    access.changed([members[1].id], subjects=())
    assert access.grants_of(members[1]) == {}
    assert queried == [[members[1].id]]  # not the group (its own: dropped by the clear above)


def test_resource_sets_are_read_again_after_any_write(store: Store, objects: ObjectStore) -> None:
    access = Access(store, objects)
    ann = user(store, "ann")
    set_id = store.resource_sets.create("s", subjects=[ann.id], objects=["sr"])["id"]
    assert access.visible(ann, "sr") and not access.visible(ann, "vm2")
    store.resource_sets.update(set_id, lambda s: s["objects"].append("vm2"))
    access.changed([ann.id], subjects=())
    assert access.visible(ann, "vm2")
