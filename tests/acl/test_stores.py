"""The ACL, group and resource-set tables (xod/store/{acls,groups,resource_sets}.py)."""

from __future__ import annotations

import threading

import pytest

from xod.api import errors
from xod.store import (
    DuplicateGroup,
    NoSuchGroup,
    NoSuchResourceSet,
    NoSuchUser,
    NotEnoughResources,
    Store,
    acl_id,
)
from xod.store.resource_sets import normalize

# -- ACLs -------------------------------------------------------------------------------------


def test_acl_ids_are_stable_per_triple_and_opaque_6_chars(store: Store) -> None:
    acl = store.acls.add("user-1", "vm-1", "viewer")
    assert len(acl.id) == 6 and acl.id == acl_id("user-1", "vm-1", "viewer")
    assert acl.id != acl_id("user-1", "vm-1", "operator")
    assert acl.id != acl_id("user-1vm-1", "", "viewer")  # no ambiguity between fields
    # Adding it again changes nothing; removing it then re-adding gives the same id.
    assert store.acls.add("user-1", "vm-1", "viewer") == acl
    assert [a.public() for a in store.acls.all()] == [
        {"id": acl.id, "subject": "user-1", "object": "vm-1", "action": "viewer"}
    ]
    assert store.acls.remove("user-1", "vm-1", "viewer")
    assert not store.acls.remove("user-1", "vm-1", "viewer")
    assert store.acls.add("user-1", "vm-1", "viewer").id == acl.id


def test_acls_by_subjects_and_by_object(store: Store) -> None:
    store.acls.add("u", "vm-1", "viewer")
    store.acls.add("g", "vm-1", "admin")
    store.acls.add("u", "pool", "operator")
    store.acls.add("other", "vm-1", "viewer")
    assert [(a.subject, a.object) for a in store.acls.for_subjects(["u", "g"])] == [
        ("u", "vm-1"),
        ("g", "vm-1"),
        ("u", "pool"),
    ]
    assert store.acls.for_subjects([]) == []
    removed = store.acls.remove_for_object("vm-1", ["u", "g"])
    assert sorted(a.subject for a in removed) == ["g", "u"]
    assert [a.subject for a in store.acls.for_object("vm-1")] == ["other"]
    store.acls.remove_for_object("vm-1")
    assert store.acls.for_object("vm-1") == []


def test_deleting_a_user_deletes_its_acls_and_memberships(store: Store) -> None:
    user = store.users.create("ann@example.com", "pw")
    group = store.groups.create("ops")
    store.groups.add_user(group.id, user.id)
    store.acls.add(user.id, "vm-1", "viewer")
    store.acls.add(group.id, "vm-2", "viewer")
    assert store.users.delete(user.id)
    assert [a.object for a in store.acls.all()] == ["vm-2"]
    assert store.groups.get(group.id) is not None
    assert store.groups.get(group.id).users == ()


# -- groups -----------------------------------------------------------------------------------


def test_membership_is_seen_from_both_sides(store: Store) -> None:
    ann = store.users.create("ann@example.com", "pw")
    bob = store.users.create("bob@example.com", "pw")
    ops = store.groups.create("ops")
    devs = store.groups.create("devs")
    assert store.users.get(ann.id).groups == []
    store.groups.add_user(ops.id, ann.id)
    store.groups.add_user(devs.id, ann.id)
    store.groups.add_user(ops.id, ann.id)  # twice: still one membership
    # The user store's cache saw the change.
    assert store.users.get(ann.id).groups == [ops.id, devs.id]
    assert store.groups.get(ops.id).users == (ann.id,)
    changed = store.groups.set_users(ops.id, [bob.id])
    assert changed == {ann.id, bob.id}
    assert store.users.get(ann.id).groups == [devs.id]
    assert store.users.get(bob.id).groups == [ops.id]
    store.groups.remove_user(ops.id, bob.id)
    store.groups.remove_user(ops.id, bob.id)  # not a member: nothing to do
    assert store.groups.get(ops.id).users == ()
    assert [g.public() for g in store.groups.list()] == [
        {"id": devs.id, "name": "devs", "users": [ann.id]},
        {"id": ops.id, "name": "ops", "users": []},
    ]


def test_group_errors(store: Store) -> None:
    ann = store.users.create("ann@example.com", "pw")
    ops = store.groups.create("ops")
    with pytest.raises(DuplicateGroup):
        store.groups.create("ops")
    other = store.groups.create("other")
    with pytest.raises(DuplicateGroup):
        store.groups.rename(other.id, "ops")
    with pytest.raises(NoSuchGroup):
        store.groups.rename("nope", "x")
    with pytest.raises(NoSuchGroup):
        store.groups.add_user("nope", ann.id)
    with pytest.raises(NoSuchUser):
        store.groups.add_user(ops.id, "nobody")
    with pytest.raises(NoSuchUser):
        store.groups.set_users(ops.id, [ann.id, "nobody"])
    assert store.groups.get(ops.id).users == ()  # all or nothing
    with pytest.raises(NoSuchGroup):
        store.groups.delete("nope")


def test_deleting_a_group_drops_its_acls_and_memberships(store: Store) -> None:
    ann = store.users.create("ann@example.com", "pw")
    ops = store.groups.create("ops")
    store.groups.add_user(ops.id, ann.id)
    store.acls.add(ops.id, "pool", "viewer")
    store.acls.add(ann.id, "vm", "viewer")
    assert store.groups.delete(ops.id) == (ann.id,)
    assert store.users.get(ann.id).groups == []
    assert [a.subject for a in store.acls.all()] == [ann.id]


# -- resource sets ------------------------------------------------------------------------------


def test_normalize_fills_xo_defaults() -> None:
    assert normalize({"id": "x", "limits": {"cpus": 4, "disk": {"total": 10, "available": 3}}}) == {
        "id": "x",
        "name": "",
        "subjects": [],
        "objects": [],
        "ipPools": [],
        "tags": [],
        "shareByDefault": False,
        "limits": {
            "cpus": {"total": 4, "usage": 0},
            "disk": {"total": 10, "available": 3, "usage": 0},
        },
    }


def test_resource_set_crud(store: Store) -> None:
    created = store.resource_sets.create(
        "sandbox", subjects=["u"], objects=["tpl"], limits={"cpus": 8}
    )
    assert len(created["id"]) == 8
    assert created["limits"] == {"cpus": {"total": 8, "usage": 0}}
    assert store.resource_sets.get(created["id"]) == created
    store.resource_sets.create("other", subjects=["g"])
    assert [s["name"] for s in store.resource_sets.all()] == ["sandbox", "other"]
    assert [s["name"] for s in store.resource_sets.for_subjects(["x", "g"])] == ["other"]
    assert store.resource_sets.delete(created["id"]) == created
    with pytest.raises(NoSuchResourceSet):
        store.resource_sets.get(created["id"])
    with pytest.raises(NoSuchResourceSet):
        store.resource_sets.delete(created["id"])


def test_set_fields_keeps_usages_as_xo(store: Store) -> None:
    rs = store.resource_sets.create("s", limits={"cpus": 8, "memory": 100})
    store.resource_sets.allocate({"cpus": 2, "memory": 50}, rs["id"], force=False)
    before, after = store.resource_sets.set_fields(
        rs["id"], name="", limits={"cpus": 16, "disk": 10}, subjects=["u"]
    )
    assert before["limits"]["cpus"] == {"total": 8, "usage": 2}
    assert after["name"] == "s"  # an empty name is ignored
    assert after["subjects"] == ["u"]
    assert after["limits"] == {
        "cpus": {"total": 16, "usage": 2},
        "disk": {"total": 10, "usage": 0},
        "memory": {"usage": 50},  # no longer limited; its usage kept
    }


def test_allocate_and_release(store: Store) -> None:
    rs = store.resource_sets.create("s", limits={"cpus": 4})
    set_id = rs["id"]
    store.resource_sets.allocate({"cpus": 3, "vms": 1}, set_id, force=False)
    assert store.resource_sets.get(set_id)["limits"] == {
        "cpus": {"total": 4, "usage": 3},
        "vms": {"usage": 1},  # created without a total: unlimited
    }
    with pytest.raises(NotEnoughResources) as refused:
        store.resource_sets.allocate({"vms": 1, "cpus": 2}, set_id, force=False)
    assert refused.value.data == [
        {"resourceSet": set_id, "resourceType": "cpus", "available": 1, "requested": 2}
    ]
    # Nothing was charged, not even the limit before the failing one.
    assert store.resource_sets.get(set_id)["limits"]["vms"] == {"usage": 1}
    store.resource_sets.allocate({"cpus": 2}, set_id, force=True)  # admins may go past
    assert store.resource_sets.get(set_id)["limits"]["cpus"]["usage"] == 5
    store.resource_sets.release({"cpus": 9, "nope": 1}, set_id)
    assert store.resource_sets.get(set_id)["limits"]["cpus"] == {"total": 4, "usage": 0}
    with pytest.raises(NoSuchResourceSet):
        store.resource_sets.allocate({"cpus": 1}, "nope", force=False)


def test_concurrent_allocations_never_exceed_the_total(store: Store) -> None:
    set_id = store.resource_sets.create("s", limits={"vms": 10})["id"]
    refused: list[NotEnoughResources] = []

    def charge() -> None:
        for _ in range(5):
            try:
                store.resource_sets.allocate({"vms": 1}, set_id, force=False)
            except NotEnoughResources as error:
                refused.append(error)

    threads = [threading.Thread(target=charge) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert store.resource_sets.get(set_id)["limits"]["vms"] == {"total": 10, "usage": 10}
    assert len(refused) == 10


def test_recompute_resets_vm_resources_only(store: Store) -> None:
    a = store.resource_sets.create("a", limits={"cpus": 8, "ipPool:p": 4, "memory": 100})
    b = store.resource_sets.create("b", limits={"cpus": 8})
    store.resource_sets.allocate({"cpus": 5, "ipPool:p": 2}, a["id"], force=False)
    store.resource_sets.allocate({"cpus": 7}, b["id"], force=False)
    store.resource_sets.recompute({a["id"]: {"cpus": 2, "disk": 10, "memory": 30}})
    assert store.resource_sets.get(a["id"])["limits"] == {
        "cpus": {"total": 8, "usage": 2},
        "ipPool:p": {"total": 4, "usage": 2},
        "memory": {"total": 100, "usage": 30},
    }
    assert store.resource_sets.get(b["id"])["limits"]["cpus"]["usage"] == 0


def test_an_excess_reaches_clients_as_xo_code_24(store: Store) -> None:
    set_id = store.resource_sets.create("s", limits={"memory": 100})["id"]
    with pytest.raises(NotEnoughResources) as refused:
        store.resource_sets.allocate({"memory": 150}, set_id, force=False)
    assert errors.not_enough_resources(refused.value.data).to_json() == {
        "message": "not enough resources in resource set",
        "code": 24,
        "data": [
            {"resourceSet": set_id, "resourceType": "memory", "available": 100, "requested": 150}
        ],
    }
