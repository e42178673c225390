"""group.*: groups of users (admins only). A group's ACLs and resource sets apply to its
members, so membership changes tell `Access` which users' grants changed."""

from __future__ import annotations

from typing import Any

from xod.api import errors
from xod.api.context import CallContext
from xod.api.registry import Registry
from xod.store import DuplicateGroup, NoSuchGroup, NoSuchUser


def _refused(error: NoSuchGroup | NoSuchUser | DuplicateGroup) -> errors.ApiError:
    """XO's errors for the store's refusals."""
    if isinstance(error, NoSuchGroup):
        return errors.no_such_object(error.id, "group")
    if isinstance(error, NoSuchUser):
        return errors.no_such_object(str(error), "user")
    return errors.object_already_exists(error.name, "group")


def register(registry: Registry) -> None:
    @registry.method("group.create", permission="admin")
    async def create(ctx: CallContext, params: dict[str, Any]) -> Any:
        try:
            return ctx.services.store.groups.create(params["name"]).id
        except DuplicateGroup as error:
            raise _refused(error) from None

    @registry.method("group.delete", permission="admin")
    async def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
        try:
            members = ctx.services.store.groups.delete(params["id"])
        except NoSuchGroup as error:
            raise _refused(error) from None
        ctx.services.access.changed(members, subjects=[params["id"]])
        return True

    @registry.method("group.getAll", permission="admin")
    async def get_all(ctx: CallContext, params: dict[str, Any]) -> Any:
        return [group.public() for group in ctx.services.store.groups.list()]

    @registry.method("group.set", permission="admin")
    async def set_group(ctx: CallContext, params: dict[str, Any]) -> Any:
        groups = ctx.services.store.groups
        try:
            if "name" in params:
                groups.rename(params["id"], params["name"])
            elif groups.get(params["id"]) is None:
                raise NoSuchGroup(params["id"])
        except (NoSuchGroup, DuplicateGroup) as error:
            raise _refused(error) from None
        return True  # a name changes nobody's grants

    @registry.method("group.addUser", permission="admin")
    async def add_user(ctx: CallContext, params: dict[str, Any]) -> Any:
        try:
            ctx.services.store.groups.add_user(params["id"], params["userId"])
        except (NoSuchGroup, NoSuchUser) as error:
            raise _refused(error) from None
        ctx.services.access.changed([params["userId"]], subjects=())
        return True

    @registry.method("group.removeUser", permission="admin")
    async def remove_user(ctx: CallContext, params: dict[str, Any]) -> Any:
        try:
            ctx.services.store.groups.remove_user(params["id"], params["userId"])
        except (NoSuchGroup, NoSuchUser) as error:
            raise _refused(error) from None
        ctx.services.access.changed([params["userId"]], subjects=())
        return True

    @registry.method("group.setUsers", permission="admin")
    async def set_users(ctx: CallContext, params: dict[str, Any]) -> Any:
        user_ids = params["userIds"]
        # XO's schema accepts anything here; its code needs an array of ids.
        if not isinstance(user_ids, list) or not all(isinstance(i, str) for i in user_ids):
            raise errors.invalid_parameter(
                "/userIds", "type", "must be an array of user ids", {"type": "array"}
            )
        try:
            changed = ctx.services.store.groups.set_users(params["id"], user_ids)
        except (NoSuchGroup, NoSuchUser) as error:
            raise _refused(error) from None
        ctx.services.access.changed(changed, subjects=())
        return True
