"""Shared set-up for the permission tests: users of each level signed in on their own
connections, ACLs and resource sets granted by the admin, and the refusal a caller gets.

(No tests here: helpers only.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.harness import Client, RpcError, connect
from tests.api.test_commands_support import Env

PASSWORD = "pw-permissions"


async def new_user(env: Env, email: str, permission: str = "none") -> str:
    """A user of global level `permission` (made by the admin); its id."""
    user_id: str = await env.client.call(
        "user.create", {"email": email, "password": PASSWORD, "permission": permission}
    )
    return user_id


@contextlib.asynccontextmanager
async def signed_in(env: Env, email: str) -> AsyncIterator[Client]:
    async with connect(env.app) as client:
        await client.sign_in(email, PASSWORD)
        yield client


async def grant(env: Env, subject: str, object_id: str, role: str) -> None:
    assert await env.client.call(
        "acl.add", {"subject": subject, "object": object_id, "action": role}
    )


async def new_resource_set(env: Env, name: str = "sandbox", **fields: Any) -> dict[str, Any]:
    resource_set: dict[str, Any] = await env.client.call(
        "resourceSet.create", {"name": name, **fields}
    )
    return resource_set


async def resource_set(env: Env, set_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await env.client.call("resourceSet.get", {"id": set_id})
    return found


async def acls_on(env: Env, object_id: str) -> list[tuple[str, str]]:
    """(subject, role) of every ACL on the object."""
    acls = await env.client.call("acl.get")
    return sorted((acl["subject"], acl["action"]) for acl in acls if acl["object"] == object_id)


async def refusal(client: Client, method: str, params: dict[str, Any]) -> RpcError:
    """The error `client` gets for the call (which must fail)."""
    with pytest.raises(RpcError) as raised:
        await client.call(method, params)
    return raised.value


def not_allowed(permission: str, object_id: str, object_type: str) -> dict[str, Any]:
    """XO's data of an object-level refusal (code 2)."""
    return {"permission": permission, "object": {"id": object_id, "type": object_type}}


def by_label(env: Env, object_type: str, label: str) -> dict[str, Any]:
    return next(
        obj
        for obj in env.app.objects.by_type(object_type).values()
        if obj.get("name_label") == label
    )
