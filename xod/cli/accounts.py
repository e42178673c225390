"""register / unregister / create-token (xo-cli's flows: sign in, then keep a token)."""

from __future__ import annotations

import asyncio
import getpass
import platform
import socket
import sys
import time
from typing import Any, cast

from xod import __version__
from xod.cli import config as config_file
from xod.cli.errors import INVALID_PARAMETERS, CliError, RpcError, UsageError
from xod.cli.rpc import RpcConnection
from xod.cli.session import registered_connection, sign_in_with_password, sign_in_with_token

CREATE_TOKEN_DESCRIPTION = "xod-cli create-token"


def token_description() -> str:
    # xo-cli's: "xo-cli@<ver> - <hostname> - <OS> <arch>", so a user can tell tokens apart.
    return (
        f"xod-cli@{__version__} - {socket.gethostname()} - {platform.system()} {platform.machine()}"
    )


def expires_in(value: str | None) -> int | str | None:
    """`--expiresIn 3600000` is milliseconds; `--expiresIn "30 days"` goes as written."""
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def read_password(prompt: str = "Password: ") -> str:
    if sys.stdin.isatty():
        try:
            return getpass.getpass(prompt)
        except EOFError:
            return ""
    # Not a terminal: a script pipes the password in (`echo "$PW" | xod-cli register …`).
    return sys.stdin.readline().rstrip("\r\n")


async def create_token(
    connection: RpcConnection,
    *,
    description: str,
    client_id: str | None,
    expires: int | str | None,
) -> str:
    params: dict[str, Any] = {"description": description}
    if client_id is not None:
        params["client"] = {"id": client_id}
    if expires is not None:
        params["expiresIn"] = expires
    try:
        return cast(str, await connection.call("token.create", params))
    except RpcError as error:
        # xo-cli's fallback for servers that know neither `client` nor `description`.
        if error.code != INVALID_PARAMETERS or not (set(params) - {"expiresIn"}):
            raise
        fallback = {} if expires is None else {"expiresIn": expires}
        return cast(str, await connection.call("token.create", fallback))


async def token_expiration(connection: RpcConnection, client_id: str) -> int | None:
    """When the new token expires, as the server says (to tell "expired" from "revoked")."""
    try:
        tokens = await connection.call("user.getAuthenticationTokens")
    except CliError:
        return None
    for record in tokens if isinstance(tokens, list) else ():
        client = record.get("client") if isinstance(record, dict) else None
        if isinstance(client, dict) and client.get("id") == client_id:
            expiration = record.get("expiration")
            return expiration if isinstance(expiration, int) else None
    return None


async def register(
    url: str,
    email: str | None,
    password: str | None,
    *,
    expires: str | None,
    allow_unauthorized: bool,
    token: str | None,
) -> int:
    config = config_file.load()
    connection = await RpcConnection.open(url, allow_unauthorized=allow_unauthorized)
    try:
        if token is not None:
            # `register --token T URL`: adopt an existing token after checking it works.
            config.server, config.token, config.expires_at = url, token, None
            config.allow_unauthorized = allow_unauthorized
            user = await sign_in_with_token(connection, config)
        else:
            if email is None:
                raise UsageError("register needs URL and EMAIL (or --token TOKEN URL)")
            if password is None:
                password = read_password()
            user = await sign_in_with_password(connection, email, password)
            client_id = config.ensure_client_id()
            new_token = await create_token(
                connection,
                description=token_description(),
                client_id=client_id,
                expires=expires_in(expires),
            )
            config.server, config.token = url, new_token
            config.allow_unauthorized = allow_unauthorized
            config.expires_at = await token_expiration(connection, client_id)
    finally:
        await connection.close()
    path = config_file.save(config)
    until = ""
    if config.expires_at is not None:
        until = time.strftime(" until %Y-%m-%d %H:%M UTC", time.gmtime(config.expires_at / 1000))
    who = user.get("email") if isinstance(user, dict) else email
    print(f"registered as {who} on {url}{until} ({path})")
    return 0


async def unregister() -> int:
    config = config_file.load()
    if not config.registered:
        print("not registered")
        return 0
    # Revoke the token on the server too, but never let a dead server keep a user registered.
    try:
        async with asyncio.timeout(5):
            async with registered_connection(config) as connection:
                await connection.call("token.deleteOwn", {"tokens": [config.token]})
    except (CliError, TimeoutError):
        pass
    server = config.server
    config.server = config.token = config.expires_at = None
    config_file.save(config)  # the client id stays: a later register refreshes the same record
    print(f"unregistered from {server}")
    return 0


async def create_token_command(
    url: str | None,
    email: str | None,
    password: str | None,
    *,
    expires: str | None,
    allow_unauthorized: bool,
) -> int:
    if url is None:
        async with registered_connection() as connection:
            token = await create_token(
                connection,
                description=CREATE_TOKEN_DESCRIPTION,
                client_id=None,
                expires=expires_in(expires),
            )
    else:
        if email is None:
            raise UsageError("create-token needs URL and EMAIL (or nothing, when registered)")
        if password is None:
            password = read_password()
        async with await RpcConnection.open(
            url, allow_unauthorized=allow_unauthorized
        ) as connection:
            await sign_in_with_password(connection, email, password)
            token = await create_token(
                connection,
                description=CREATE_TOKEN_DESCRIPTION,
                client_id=None,
                expires=expires_in(expires),
            )
    print(token)
    return 0
