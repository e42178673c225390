"""What another cluster member changed in the shared state (xod/cluster/shared_state.py), taken
into account here as that member's own API call was there: a deleted user or token signs its
connections out (as xod/api/methods/user.py and token.py do), and a change to users, groups,
ACLs or resource sets drops the permissions this instance computed (as the acl, group, user
and resourceSet methods do through xod/api/access.py). Servers: `ClusterNode.follow_servers`."""

from __future__ import annotations

from xod.api.services import Services
from xod.store.replicated import Change

# The tables whose rows decide what a user may see and do.
ACCESS_TABLES = frozenset({"users", "acls", "groups", "group_members", "resource_sets"})


def follow_remote_changes(services: Services, changes: list[Change]) -> None:
    sessions = services.sessions
    for change in changes:
        if change.table == "users" and change.deleted:
            sessions.sign_out_user(change.id)
        elif change.table == "tokens" and change.deleted:
            sessions.sign_out_token(change.id)
    if any(change.table in ACCESS_TABLES for change in changes):
        services.access.changed(None)  # anyone's: rare, and the writer's exact set is not here
