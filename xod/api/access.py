"""THE permission check: whether a user may view, operate or administrate an object, and what
a user may see. Every path that shows or acts on objects asks here.

Global levels (the user's `permission`) come first:
  admin          every check passes; sees everything
  write          implicit `administrate` (so `operate` and `view` too) on every object
  read           implicit `view` on every object; acting needs ACLs
  none, user     only what ACLs grant (the user's and its groups', through XO's inheritance,
                 xod/acl/resolver.py), plus the objects of its resource sets (seen, not acted on)
"Sees everything" (admin, write, read) is `view_of(user) is None`: the unfiltered view.

A user's grants (object id → permissions) are computed once and cached per user id until a
write that may change them: every writer (the acl, group, user and resourceSet methods, and
commands that add or remove ACLs) calls `changed(user ids, subjects=...)` after committing,
which drops the cached entries and tells the subscribers (the views of xod/server) whose view
may have moved. Each subject's (user's or group's) own ACLs are cached too, so a group's are read
once for all its members; naming the subjects whose ACLs changed keeps the others' cached.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable

from xod.acl.resolver import GetObject, Grants, check
from xod.acl.roles import PERMISSION_NAMES, VIEW, grants_from
from xod.api import errors
from xod.cache.store import ObjectStore
from xod.store import ResourceSet, Store, User

log = logging.getLogger(__name__)

# Receives the ids of the users whose grants or view may have changed; None: anyone's.
AccessListener = Callable[[frozenset[str] | None], None]

_SEES_EVERYTHING = frozenset({"admin", "write", "read"})
_IMPLICIT: dict[str, frozenset[str]] = {
    "write": frozenset(PERMISSION_NAMES),
    "read": frozenset({VIEW}),
}
_VIEW = frozenset({VIEW})


class View:
    """What a filtered user sees: objects granted `view` (directly or by inheritance) and the
    objects of its resource sets. Users with the same such grants share one View (equal, same
    hash, same `key`), so whatever is computed per view is computed once for all of them."""

    __slots__ = ("_grants", "key", "resource_set_objects")

    def __init__(self, viewable: Iterable[str], resource_set_objects: Iterable[str]) -> None:
        self._grants: Grants = {object_id: _VIEW for object_id in viewable}
        self.resource_set_objects = frozenset(resource_set_objects)
        canonical = (
            "\n".join(sorted(self._grants)) + "\n\n" + "\n".join(sorted(self.resource_set_objects))
        )
        self.key: str = hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def viewable(self) -> frozenset[str]:
        """The object ids granted `view` by an ACL (their dependants inherit it)."""
        return frozenset(self._grants)

    def visible(self, object_id: str, get_object: GetObject) -> bool:
        return object_id in self.resource_set_objects or check(
            self._grants, get_object, object_id, "view"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, View) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"View({self.key[:12]}, {len(self._grants)} granted)"


class Access:
    def __init__(self, store: Store, objects: ObjectStore) -> None:
        self._store = store
        self._objects = objects
        self._grants: dict[str, Grants] = {}  # per user id
        self._by_subject: dict[str, Grants] = {}  # per ACL subject (user or group id)
        self._resource_sets: list[ResourceSet] | None = None  # every set, until a write
        self._views: dict[str, View] = {}
        self._listeners: list[AccessListener] = []

    # -- grants --------------------------------------------------------------------------

    def subjects_of(self, user: User) -> list[str]:
        """The ACL subjects that apply to `user`: its id and its groups' (as stored now)."""
        current = self._store.users.get(user.id) or user
        return [current.id, *current.groups]

    def grants_of(self, user: User) -> Grants:
        """Object id → the permissions the user's and its groups' ACLs grant on it (without
        inheritance and without the global level: `acl.getCurrentPermissions`'s content)."""
        grants = self._grants.get(user.id)
        if grants is None:
            parts = [part for part in self._grants_by_subject(self.subjects_of(user)) if part]
            if len(parts) == 1:
                grants = parts[0]
            else:
                merged: dict[str, frozenset[str]] = {}
                for part in parts:
                    for object_id, names in part.items():
                        merged[object_id] = merged.get(object_id, frozenset()) | names
                grants = merged
            self._grants[user.id] = grants
        return grants

    def _grants_by_subject(self, subjects: list[str]) -> list[Grants]:
        """Each subject's own grants, from the cache or (those missing) one query: a group's
        ACLs are read once for all its members."""
        missing = [subject for subject in subjects if subject not in self._by_subject]
        if missing:
            pairs: dict[str, list[tuple[str, str]]] = {subject: [] for subject in missing}
            for acl in self._store.acls.for_subjects(missing):
                pairs[acl.subject].append((acl.object, acl.action))
            for subject, acls in pairs.items():
                self._by_subject[subject] = grants_from(acls)
        return [self._by_subject[subject] for subject in subjects]

    def can(self, user: User | None, object_id: str, permission: str) -> bool:
        if user is None:
            return False
        if user.permission == "admin" or permission in _IMPLICIT.get(user.permission, ()):
            return True
        return check(self.grants_of(user), self._objects.get, object_id, permission)

    def check(self, user: User | None, object_id: str, permission: str) -> None:
        """Raise XO's code 2 `{permission, object: {id, type}}` unless `can`."""
        if not self.can(user, object_id, permission):
            obj = self._objects.get(object_id)
            object_type = obj.get("type") if obj is not None else None
            raise errors.unauthorized(permission, object_id, object_type)

    # -- views ---------------------------------------------------------------------------

    def view_of(self, user: User) -> View | None:
        """None when the user sees everything (admin, write, read); else its View."""
        if user.permission in _SEES_EVERYTHING:
            return None
        view = self._views.get(user.id)
        if view is None:
            grants = self.grants_of(user)
            subjects = set(self.subjects_of(user))
            if self._resource_sets is None:
                self._resource_sets = self._store.resource_sets.all()
            in_sets = (
                object_id
                for resource_set in self._resource_sets
                if not subjects.isdisjoint(resource_set["subjects"])
                for object_id in resource_set["objects"]
            )
            viewable = (object_id for object_id, names in grants.items() if "view" in names)
            view = self._views[user.id] = View(viewable, in_sets)
        return view

    def visible(self, user: User, object_id: str) -> bool:
        view = self.view_of(user)
        return view is None or view.visible(object_id, self._objects.get)

    # -- changes -------------------------------------------------------------------------

    def subscribe(self, listener: AccessListener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def changed(
        self, user_ids: Iterable[str] | None, *, subjects: Iterable[str] | None = None
    ) -> None:
        """After a committed write: the grants or views of `user_ids` (None: of anyone) may
        have changed. `subjects`: the ACL subjects (user or group ids) whose ACLs changed, when
        the caller knows them (() for none: a membership, a level); without it every subject's
        cached ACLs are read again. Resource sets are read again after any write."""
        ids = None if user_ids is None else frozenset(user_ids)
        if ids is None:
            self._grants.clear()
            self._views.clear()
        else:
            for user_id in ids:
                self._grants.pop(user_id, None)
                self._views.pop(user_id, None)
        if subjects is None:
            self._by_subject.clear()
        else:
            for subject in subjects:
                self._by_subject.pop(subject, None)
        self._resource_sets = None
        for listener in list(self._listeners):
            try:
                listener(ids)
            except Exception:  # one broken listener must not stop the others nor the writer
                log.exception("access listener failed")

    def members_of(self, subjects: Iterable[str]) -> set[str]:
        """The user ids an ACL or resource set on `subjects` (user or group ids) applies to."""
        affected: set[str] = set()
        for subject in subjects:
            group = self._store.groups.get(subject)
            if group is not None:
                affected.update(group.users)
            else:
                affected.add(subject)
        return affected
