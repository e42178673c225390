"""token.* and user.getAuthenticationTokens' helpers."""

from __future__ import annotations

import re
from typing import Any

from xod.api import errors
from xod.api.context import CallContext
from xod.api.registry import SIGNED_IN, Registry
from xod.filters import partial_match
from xod.store import TokenError

_UNITS_MS = {
    "ms": 1,
    "msec": 1,
    "msecs": 1,
    "millisecond": 1,
    "milliseconds": 1,
    "s": 1000,
    "sec": 1000,
    "secs": 1000,
    "second": 1000,
    "seconds": 1000,
    "m": 60_000,
    "min": 60_000,
    "mins": 60_000,
    "minute": 60_000,
    "minutes": 60_000,
    "h": 3_600_000,
    "hr": 3_600_000,
    "hrs": 3_600_000,
    "hour": 3_600_000,
    "hours": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
    "days": 86_400_000,
    "w": 604_800_000,
    "week": 604_800_000,
    "weeks": 604_800_000,
    "y": 31_557_600_000,
    "yr": 31_557_600_000,
    "yrs": 31_557_600_000,
    "year": 31_557_600_000,
    "years": 31_557_600_000,
}
_DURATION = re.compile(r"^\s*(-?(?:\d+)?\.?\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_duration_ms(value: int | float | str) -> int:
    """XO's `expiresIn`: milliseconds, or an `ms`-package duration string ("30 days")."""
    if isinstance(value, (int, float)):
        return int(value)
    match = _DURATION.match(value)
    if match is None or match.group(2).lower() not in (*_UNITS_MS, ""):
        raise ValueError(f"invalid duration {value!r}")
    return int(float(match.group(1)) * _UNITS_MS.get(match.group(2).lower() or "ms", 1))


def _invalid(path: str, message: str) -> errors.ApiError:
    return errors.invalid_parameter(path, "custom", message)


def sign_out_deleted_tokens(ctx: CallContext) -> None:
    """Connections signed in with a token that no longer exists lose their sign-in now."""
    tokens = ctx.services.store.tokens
    for connection in ctx.services.sessions.signed_in_by_token():
        if connection.token_id is not None and tokens.get(connection.token_id) is None:
            connection.sign_out()


def delete_tokens(ctx: CallContext, params: dict[str, Any], user_id: str | None) -> int:
    tokens = ctx.services.store.tokens
    deleted = 0
    if params.get("tokens"):
        deleted += tokens.delete(params["tokens"], user_id=user_id)
    pattern = params.get("pattern")
    if pattern is not None:
        deleted += tokens.delete_matching(lambda r: partial_match(pattern, r), user_id=user_id)
    if deleted:
        sign_out_deleted_tokens(ctx)
    return deleted


def register(registry: Registry) -> None:
    @registry.method("token.create", permission=SIGNED_IN)
    async def create(ctx: CallContext, params: dict[str, Any]) -> Any:
        user = ctx.require_user()
        expires_in = params.get("expiresIn")
        try:
            expires_in_ms = None if expires_in is None else parse_duration_ms(expires_in)
        except ValueError as error:
            raise _invalid("/expiresIn", str(error)) from None
        client = params.get("client") or {}
        try:
            created = ctx.services.store.tokens.create(
                user.id,
                description=params.get("description"),
                client_id=client.get("id"),
                expires_in_ms=expires_in_ms,
            )
        except TokenError as error:
            raise _invalid("/expiresIn", str(error)) from None
        return created.token

    @registry.method("token.delete", permission="admin")
    async def delete(ctx: CallContext, params: dict[str, Any]) -> Any:
        delete_tokens(ctx, params, None)
        return True

    @registry.method("token.deleteOwn", permission=SIGNED_IN)
    async def delete_own(ctx: CallContext, params: dict[str, Any]) -> Any:
        delete_tokens(ctx, params, ctx.require_user().id)
        return True

    @registry.method("token.set", permission=SIGNED_IN)
    async def set_description(ctx: CallContext, params: dict[str, Any]) -> Any:
        user = ctx.require_user()
        tokens = ctx.services.store.tokens
        record = tokens.get(params["id"])
        if record is None or (record.user_id != user.id and not ctx.is_admin):
            raise errors.no_such_object(params["id"], "token")
        tokens.set_description(record.id, params["description"])
        return True
