"""Connections that are signed in: by the registered token, or by email and password."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, cast

from xod.cli.config import Config, load_registered
from xod.cli.errors import INVALID_CREDENTIALS, CliError, ExitCode, RpcError
from xod.cli.rpc import RpcConnection


def _token_rejected(config: Config) -> CliError:
    if config.expires_at is not None and config.expires_at <= time.time() * 1000:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(config.expires_at / 1000))
        reason = f"the registered token expired on {when}"
    else:
        reason = "the registered token is no longer accepted (expired or revoked)"
    return CliError(
        f"{reason}: run `xod-cli register {config.server} EMAIL` again", ExitCode.TOKEN_REJECTED
    )


def _sign_in_failed(error: RpcError) -> CliError:
    if error.code == INVALID_CREDENTIALS:
        return CliError("authentication failed: wrong email or password", ExitCode.AUTH_FAILED)
    # e.g. "too fast authentication tries" (-32000): still an authentication failure.
    message = error.error.get("message") or "error"
    return CliError(f"authentication failed: {message}", ExitCode.AUTH_FAILED)


async def sign_in_with_token(connection: RpcConnection, config: Config) -> dict[str, Any]:
    try:
        user = await connection.call("session.signIn", {"token": config.token})
        return cast(dict[str, Any], user)
    except RpcError as error:
        if error.code == INVALID_CREDENTIALS:
            raise _token_rejected(config) from None
        raise _sign_in_failed(error) from None


async def sign_in_with_password(
    connection: RpcConnection, email: str, password: str
) -> dict[str, Any]:
    try:
        user = await connection.call("session.signIn", {"email": email, "password": password})
        return cast(dict[str, Any], user)
    except RpcError as error:
        raise _sign_in_failed(error) from None


@contextlib.asynccontextmanager
async def registered_connection(config: Config | None = None) -> AsyncIterator[RpcConnection]:
    """A connection to the registered server, signed in with the registered token."""
    config = config or load_registered()
    assert config.server is not None
    connection = await RpcConnection.open(
        config.server, allow_unauthorized=config.allow_unauthorized
    )
    try:
        await sign_in_with_token(connection, config)
        yield connection
    finally:
        await connection.close()
