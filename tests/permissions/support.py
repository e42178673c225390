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
    # TEMPORARY until acl.add lands: straight into the store.
    env.app.services.store.acls.add(subject, object_id, role)
    env.app.services.access.changed(None)


async def new_resource_set(env: Env, **fields: Any) -> dict[str, Any]:
    # TEMPORARY until resourceSet.create lands: straight into the store.
    limits = fields.pop("limits", {})
    return env.app.services.store.resource_sets.create(
        fields.pop("name", "sandbox"), limits=limits, **fields
    )


async def acls_on(env: Env, object_id: str) -> list[tuple[str, str]]:
    """(subject, role) of every ACL on the object."""
    # TEMPORARY until acl.get lands: straight from the store.
    return sorted((a.subject, a.action) for a in env.app.services.store.acls.for_object(object_id))


def resource_set(env: Env, set_id: str) -> dict[str, Any]:
    return env.app.services.store.resource_sets.get(set_id)


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
