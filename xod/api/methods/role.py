"""role.*: the roles an ACL's action names (xod/acl/roles.py)."""

from __future__ import annotations

from typing import Any

from xod.acl.roles import role_list
from xod.api.context import CallContext
from xod.api.registry import SIGNED_IN, Registry


def register(registry: Registry) -> None:
    @registry.method("role.getAll", permission=SIGNED_IN)
    async def get_all(ctx: CallContext, params: dict[str, Any]) -> Any:
        return role_list()
