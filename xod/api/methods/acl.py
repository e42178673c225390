"""acl.*: (subject, object, action) grants, as xo-server keeps them. Admins write them; anyone
signed in reads their own permission map. Every write tells `Access` whose grants changed (the
subject, or every member of a group subject)."""

from __future__ import annotations

from typing import Any

from xod.acl.roles import permission_map
from xod.api.context import CallContext
from xod.api.registry import SIGNED_IN, Registry


def register(registry: Registry) -> None:
    @registry.method("acl.get", permission="admin")
    async def get(ctx: CallContext, params: dict[str, Any]) -> Any:
        return [acl.public() for acl in ctx.services.store.acls.all()]

    @registry.method("acl.getCurrentPermissions", permission=SIGNED_IN)
    async def get_current_permissions(ctx: CallContext, params: dict[str, Any]) -> Any:
        # Explicit grants only, admins included (usually {}), as XO: clients apply the
        # inheritance and the global level themselves.
        return permission_map(ctx.services.access.grants_of(ctx.require_user()))

    @registry.method("acl.add", permission="admin")
    async def add(ctx: CallContext, params: dict[str, Any]) -> Any:
        # No existence check on the subject, object or action, as XO.
        ctx.services.store.acls.add(params["subject"], params["object"], params["action"])
        access = ctx.services.access
        access.changed(access.members_of([params["subject"]]), subjects=[params["subject"]])
        return True

    @registry.method("acl.remove", permission="admin")
    async def remove(ctx: CallContext, params: dict[str, Any]) -> Any:
        # `true` also when there was no such entry (Terraform's delete expects it).
        if ctx.services.store.acls.remove(params["subject"], params["object"], params["action"]):
            access = ctx.services.access
            access.changed(access.members_of([params["subject"]]), subjects=[params["subject"]])
        return True
