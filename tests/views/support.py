"""Shared by the per-user view tests: users made and granted by an admin over JSON-RPC, their own
connections, and the oracle — the resolver run over the whole cache with the user's ACLs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from tests.api.harness import Client, connect
from xod.acl.resolver import check
from xod.acl.roles import grants_from
from xod.server.app import XodApp

PASSWORD = "a viewer's password"


async def add_user(admin: Client, email: str, permission: str = "none") -> str:
    user_id: str = await admin.call(
        "user.create", {"email": email, "password": PASSWORD, "permission": permission}
    )
    return user_id


async def grant(app: XodApp, admin: Client, subject: str, object_id: str, action: str) -> None:
    """An admin's `acl.add` (on its own socket)."""
    triple = {"subject": subject, "object": object_id, "action": action}
    assert await admin.call("acl.add", triple) is True


async def revoke(app: XodApp, admin: Client, subject: str, object_id: str, action: str) -> None:
    """An admin's `acl.remove` (on its own socket)."""
    triple = {"subject": subject, "object": object_id, "action": action}
    assert await admin.call("acl.remove", triple) is True


@contextlib.asynccontextmanager
async def signed_in(app: XodApp, email: str, **options: Any) -> AsyncIterator[Client]:
    async with connect(app, **options) as client:
        await client.sign_in(email, PASSWORD)
        yield client


def permitted(app: XodApp, user_id: str) -> set[str]:
    """What `user_id` may see: every cached object its ACLs grant `view` on, by inheritance."""
    user = app.store.users.get(user_id)
    assert user is not None
    acls = app.store.acls.for_subjects([user.id, *user.groups])
    grants = grants_from((acl.object, acl.action) for acl in acls)
    objects = app.objects
    return {i for i in objects.objects if check(grants, objects.get, i, "view")}


async def token_of(app: XodApp, email: str) -> str:
    async with signed_in(app, email) as client:
        token: str = await client.call("token.create", {"description": "views"})
        return token


async def download(app: XodApp, path: str, token: str) -> bytes:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{app.url}{path}", cookies={"authenticationToken": token}) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.read()
