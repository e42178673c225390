"""The three roles an ACL's `action` names, and the permission map (object id → permission
names) a list of ACLs grants, as xo-server computes them (`getRoles`, `getPermissionsForUser`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The permissions a role grants on an object, weakest first (the names methods check).
VIEW, OPERATE, ADMINISTRATE = "view", "operate", "administrate"
PERMISSION_NAMES: tuple[str, ...] = (VIEW, OPERATE, ADMINISTRATE)

# role id → (display name, permissions granted on the ACL's object). Hard-coded in XO too.
_ROLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("viewer", "Viewer", (VIEW,)),
    ("operator", "Operator", (VIEW, OPERATE)),
    ("admin", "Admin", PERMISSION_NAMES),
)

ROLES: dict[str, tuple[str, ...]] = {role: permissions for role, _, permissions in _ROLES}


def role_list() -> list[dict[str, Any]]:
    """`role.getAll`'s answer: `[{id, name, permissions}]`."""
    return [
        {"id": role, "name": name, "permissions": list(permissions)}
        for role, name, permissions in _ROLES
    ]


def permissions_of_action(action: str) -> tuple[str, ...]:
    """The permissions an ACL's action grants: a role's, or (legacy records) the action itself
    taken as a raw permission name."""
    return ROLES.get(action, (action,))


def grants_from(acls: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """(object id, action) pairs → object id → the permissions granted on it (the union over
    every ACL on that object)."""
    collected: dict[str, set[str]] = {}
    for object_id, action in acls:
        collected.setdefault(object_id, set()).update(permissions_of_action(action))
    return {object_id: frozenset(names) for object_id, names in collected.items()}


def permission_map(grants: Mapping[str, frozenset[str]]) -> dict[str, dict[str, int]]:
    """`acl.getCurrentPermissions`'s shape: `{object id: {permission: 1}}`."""
    return {object_id: {name: 1 for name in sorted(names)} for object_id, names in grants.items()}
