"""user.*: accounts with a global permission level (none/user < read < write < admin) and the
groups they belong to. Deleting a user drops its ACLs and memberships, and a changed permission
changes what it may see: both tell `Access` (xod/api/access.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from xod.api import errors
from xod.api.context import CallContext
from xod.api.registry import SIGNED_IN, Registry
from xod.store import DuplicateUser, NoSuchUser, UserError


def register(registry: Registry) -> None:
    @registry.method("user.create", permission="admin")
    async def create(ctx: CallContext, params: dict[str, Any]) -> Any:
        permission = params.get("permission", "none")
        users = ctx.services.store.users
        try:
            user = await asyncio.to_thread(
                users.create, params["email"], params["password"], permission
            )
        except DuplicateUser:
            raise errors.object_already_exists(params["email"], "user") from None
        return user.id

    @registry.method("user.delete", permission="admin")
    async def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
        if ctx.user is not None and params["id"] == ctx.user.id:
            raise errors.invalid_parameters([], "a user cannot delete itself")
        if not ctx.services.store.users.delete(params["id"]):
            raise errors.no_such_object(params["id"], "user")
        ctx.services.access.changed([params["id"]], subjects=[params["id"]])
        # Its live connections stop at once: no more `all`, subscriptions or calls.
        ctx.services.sessions.sign_out_user(params["id"])
        return True

    @registry.method("user.getAll", permission="admin")
    async def get_all(ctx: CallContext, params: dict[str, Any]) -> Any:
        return [user.public() for user in ctx.services.store.users.list()]

    @registry.method("user.set", permission="admin")
    async def set_user(ctx: CallContext, params: dict[str, Any]) -> Any:
        if (
            ctx.user is not None
            and params["id"] == ctx.user.id
            and params.get("permission") not in (None, ctx.user.permission)
        ):
            raise errors.invalid_parameters([], "a user cannot change its own permission")
        users = ctx.services.store.users
        try:
            await asyncio.to_thread(
                lambda: users.update(
                    params["id"],
                    email=params.get("email"),
                    password=params.get("password"),
                    permission=params.get("permission"),
                    preferences=params.get("preferences"),
                )
            )
        except NoSuchUser:
            raise errors.no_such_object(params["id"], "user") from None
        except DuplicateUser:
            raise errors.object_already_exists(params.get("email"), "user") from None
        except UserError as error:
            raise errors.invalid_parameters([], str(error)) from None
        ctx.services.access.changed([params["id"]], subjects=())
        return True

    @registry.method("user.changePassword", permission=SIGNED_IN)
    async def change_password(ctx: CallContext, params: dict[str, Any]) -> Any:
        user = ctx.require_user()
        users = ctx.services.store.users
        if await asyncio.to_thread(users.verify_password, user.email, params["oldPassword"]):
            await asyncio.to_thread(lambda: users.update(user.id, password=params["newPassword"]))
            return True
        raise errors.invalid_credentials()

    @registry.method("user.getAuthenticationTokens", permission=SIGNED_IN)
    async def get_authentication_tokens(ctx: CallContext, params: dict[str, Any]) -> Any:
        user = ctx.require_user()
        return [record.public() for record in ctx.services.store.tokens.list_for_user(user.id)]
