"""The objects a method acts on, declared as xo-server's `resolve` entries (`[param, types,
permission]`), and their check before the method runs: each declared param looked up (code 1
when unknown or of another type), then the caller's permission on each checked in order by the
daemon's one check, `services.access` (code 2 with the object's id and type).

Actions declare theirs with `action(…, resolve=…)` (xod/api/commands.py); other methods on
objects (reads, transfers) with `object_method`. `RESOLVES` keeps every declaration (the table
of docs/protocol.md is checked against it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from xod.acl.roles import PERMISSION_NAMES
from xod.api import errors
from xod.api.context import CallContext
from xod.api.registry import SIGNED_IN, Registry
from xod.cache.store import ObjectStore

# The permissions an ACL role grants on an object; "" = no check.
OBJECT_PERMISSIONS = ("", *PERMISSION_NAMES)

MethodHandler = Callable[[CallContext, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Resolve:
    """One object a method acts on, as xo-server's `resolve` entries declare it: the param
    naming it, the types it may have (None: any type), and the permission the caller needs on
    it ("": looked up only; the handler checks what it needs)."""

    param: str
    types: tuple[str, ...] | None
    permission: str


# Every method's `resolve` entries, by method name (discovery for tests and docs).
RESOLVES: dict[str, tuple[Resolve, ...]] = {}
# A declaration: (param, type or types or None, permission).
ResolveEntry = tuple[str, str | tuple[str, ...] | None, str]


def declare(name: str, resolve: Iterable[ResolveEntry]) -> tuple[Resolve, ...]:
    """Method `name`'s entries, checked and kept in RESOLVES."""
    entries = []
    for param, types, permission in resolve:
        if permission not in OBJECT_PERMISSIONS:
            raise ValueError(f"{name}: invalid object permission {permission!r}")
        kinds = (types,) if isinstance(types, str) else types
        entries.append(Resolve(param, kinds, permission))
    RESOLVES[name] = tuple(entries)
    return RESOLVES[name]


def find_object(
    store: ObjectStore, object_id: Any, types: tuple[str, ...] | None
) -> dict[str, Any]:
    """The cached object `object_id` of one of `types` (None: any), or XO's no-such-object."""
    obj = store.get(object_id) if isinstance(object_id, str) else None
    if obj is None or (types is not None and obj.get("type") not in types):
        label = None if types is None else types[0] if len(types) == 1 else list(types)
        raise errors.no_such_object(object_id, label)
    return obj


def authorize(ctx: CallContext, params: dict[str, Any], entries: tuple[Resolve, ...]) -> None:
    """xo-server's resolveParams then checkPermissions: every declared param looked up (code 1),
    then the caller's permission on each checked in order (code 2 for the first refused)."""
    store = ctx.services.objects
    checks = []
    for entry in entries:
        object_id = params.get(entry.param)
        if object_id is None:
            continue
        obj = find_object(store, object_id, entry.types)
        if entry.permission:
            checks.append((obj["id"], entry.permission))
    if checks and ctx.user is not None:
        access = ctx.services.access
        for object_id, permission in checks:
            access.check(ctx.user, object_id, permission)


def object_method(
    registry: Registry, name: str, *, resolve: Iterable[ResolveEntry]
) -> Callable[[MethodHandler], MethodHandler]:
    """Decorator for a method on objects that is not an action (a read, a transfer): any
    signed-in user, the declared objects checked before the handler runs."""
    entries = declare(name, resolve)

    def register(handler: MethodHandler) -> MethodHandler:
        async def run(ctx: CallContext, params: dict[str, Any]) -> Any:
            authorize(ctx, params, entries)
            return await handler(ctx, params)

        run.__name__ = handler.__name__
        registry.add(name, run, SIGNED_IN)
        return handler

    return register
