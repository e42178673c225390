"""Persistence: users, groups, ACLs, resource sets, authentication tokens, registered XAPI
servers and cloud-init templates, in one SQLite file."""

from __future__ import annotations

import os

from argon2 import PasswordHasher

from xod.store.acls import Acl, AclStore, acl_id
from xod.store.cloud_configs import CloudConfig, CloudConfigStore
from xod.store.database import DATABASE_NAME, SCHEMA_VERSION, Database, SchemaTooNew
from xod.store.first_start import FirstStartAdmin, ensure_admin
from xod.store.groups import DuplicateGroup, Group, GroupStore, NoSuchGroup
from xod.store.resource_sets import (
    VM_RESOURCES,
    NoSuchResourceSet,
    NotEnoughResources,
    ResourceSet,
    ResourceSetStore,
)
from xod.store.servers import DuplicateServer, NoSuchServer, ServerRecord, ServerStore
from xod.store.throttle import SignInThrottle, ThrottleDecision
from xod.store.tokens import NewToken, TokenError, TokenRecord, TokenStore
from xod.store.users import (
    PERMISSIONS,
    DuplicateUser,
    NoSuchUser,
    User,
    UserError,
    UserStore,
    permission_allows,
)

__all__ = [
    "DATABASE_NAME",
    "PERMISSIONS",
    "SCHEMA_VERSION",
    "VM_RESOURCES",
    "Acl",
    "AclStore",
    "CloudConfig",
    "CloudConfigStore",
    "Database",
    "DuplicateGroup",
    "DuplicateServer",
    "DuplicateUser",
    "FirstStartAdmin",
    "Group",
    "GroupStore",
    "NewToken",
    "NoSuchGroup",
    "NoSuchResourceSet",
    "NoSuchServer",
    "NoSuchUser",
    "NotEnoughResources",
    "ResourceSet",
    "ResourceSetStore",
    "SchemaTooNew",
    "ServerRecord",
    "ServerStore",
    "SignInThrottle",
    "Store",
    "ThrottleDecision",
    "TokenError",
    "TokenRecord",
    "TokenStore",
    "User",
    "UserError",
    "UserStore",
    "acl_id",
    "ensure_admin",
    "permission_allows",
]


class Store:
    """The state directory's database with its tables."""

    def __init__(self, database: Database, hasher: PasswordHasher | None = None) -> None:
        self.database = database
        self.users = UserStore(database, hasher)
        self.tokens = TokenStore(database)
        self.servers = ServerStore(database)
        self.cloud_configs = CloudConfigStore(database)
        self.acls = AclStore(database)
        self.groups = GroupStore(database, self.users.forget_cached)
        self.resource_sets = ResourceSetStore(database)

    @classmethod
    def open(cls, state_dir: str | os.PathLike[str], hasher: PasswordHasher | None = None) -> Store:
        store = cls(Database.open(state_dir), hasher)
        # Tokens that expired while xod was stopped, or that nobody used since they expired
        # (lookups and creations only delete the ones they meet): one sweep per start.
        store.tokens.purge_expired()
        return store

    def close(self) -> None:
        self.database.close()
