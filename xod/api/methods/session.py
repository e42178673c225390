"""session.*: sign in by password or token, sign out, who am I."""

from __future__ import annotations

import asyncio
import math
import sys
from typing import Any

from xod.api import errors
from xod.api.context import CallContext
from xod.api.registry import ANONYMOUS, SIGNED_IN, Registry
from xod.store import ThrottleDecision


def _too_fast(decision: ThrottleDecision) -> errors.ApiError:
    """XO's throttling error, plus how long to wait (whole seconds, in the message and data)."""
    seconds = max(1, math.ceil(decision.retry_after))
    return errors.unknown_error(
        f"too fast authentication tries: retry in {seconds} s", {"retryAfter": seconds}
    )


async def sign_in(ctx: CallContext, credentials: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    connection = ctx.connection
    token = credentials.get("token")
    if isinstance(token, str) and token:
        decision = services.throttle.check(None, connection.remote)
        if not decision.allowed:
            raise _too_fast(decision)
        record = services.store.tokens.lookup(token)
        user = None if record is None else services.store.users.get(record.user_id)
        if record is None or user is None:
            services.throttle.failure(None, connection.remote)
            raise errors.invalid_credentials()
        if connection.remote:
            # A write: in a cluster, a round trip to NATS (xod/store/replicated.py): off the loop.
            await asyncio.to_thread(services.store.tokens.record_use, record.id, connection.remote)
        # Interned: the many connections signed in with one token share its id.
        connection.sign_in(user, record.expiration, token_id=sys.intern(record.id))
        return user.public()
    email = credentials.get("email") or credentials.get("username")
    password = credentials.get("password")
    if not isinstance(email, str) or not email:
        raise errors.invalid_credentials()
    if not isinstance(password, str) or not password:
        raise errors.unknown_error("empty password")
    address = connection.remote and f"address:{connection.remote}"
    async with services.sign_in_gate.hold(address, f"identity:{email.strip().casefold()}"):
        # Checked under the gate: an attempt that waited sees the failures before it.
        decision = services.throttle.check(email, connection.remote)
        if not decision.allowed:
            raise _too_fast(decision)
        # argon2 costs ~0.1 s of CPU: keep it off the event loop.
        user = await asyncio.to_thread(services.store.users.verify_password, email, password)
        if user is None:
            services.throttle.failure(email, connection.remote)
            raise errors.invalid_credentials()
        services.throttle.success(email, connection.remote)
    connection.sign_in(user, None)
    return user.public()


def register(registry: Registry) -> None:
    @registry.method("session.signIn", permission=ANONYMOUS)
    async def sign_in_method(ctx: CallContext, params: dict[str, Any]) -> Any:
        return await sign_in(ctx, params)

    @registry.method("session.signInWithPassword", permission=ANONYMOUS)
    async def sign_in_with_password(ctx: CallContext, params: dict[str, Any]) -> Any:
        return await sign_in(ctx, params)

    @registry.method("session.signInWithToken", permission=ANONYMOUS)
    async def sign_in_with_token(ctx: CallContext, params: dict[str, Any]) -> Any:
        return await sign_in(ctx, params)

    @registry.method("session.signOut", permission=SIGNED_IN)
    async def sign_out(ctx: CallContext, params: dict[str, Any]) -> Any:
        ctx.connection.sign_out()
        return True

    @registry.method("session.getUser", permission=ANONYMOUS)
    async def get_user(ctx: CallContext, params: dict[str, Any]) -> Any:
        # xo-server throws a TypeError here when not signed in; a clear code 2 is better.
        return ctx.require_user().public()
