"""`xod-cli METHOD key=value…`: one call, its result as JSON (as `xo-cli METHOD` does).

The method's params schema (`system.methodSignature`) is read first: an unknown method is
reported before anything runs, and values are typed by their parameter (values.py). A result
`{"$getFrom": url}` is downloaded (to `@=FILE` or stdout), `{"$sendTo": url}` gets `@=FILE`
uploaded. Actions draw a progress bar from their task when stdout is a terminal (tasks.py).
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import aclosing
from typing import Any

from xod.cli import output
from xod.cli.config import Config, load_registered
from xod.cli.errors import CliError, ExitCode, RpcError, UsageError
from xod.cli.progress import ProgressBar
from xod.cli.rpc import RpcConnection
from xod.cli.session import registered_connection
from xod.cli.tasks import call_with_progress
from xod.cli.transfer import get_from, send_to
from xod.cli.values import parse_args

# system.methodSignature answers an unknown name with xo-server's `no such object` (code 1).
NO_SUCH_OBJECT = 1
METHOD_NOT_FOUND = -32601
REDRAW_INTERVAL = 0.1  # seconds between progress bar redraws of a transfer


async def method_info(connection: RpcConnection, method: str) -> dict[str, Any] | None:
    """The method's `{description, params, permission}`; None when the server cannot say."""
    try:
        signature = await connection.call("system.methodSignature", {"method": method})
    except RpcError as error:
        if error.code == NO_SUCH_OBJECT:
            raise CliError(
                f"unknown method: {method} (see `xod-cli list-commands`)", ExitCode.UNKNOWN_METHOD
            ) from None
        if error.code == METHOD_NOT_FOUND:
            return None
        raise
    if isinstance(signature, list) and signature and isinstance(signature[0], dict):
        return signature[0]
    return None


def single_key(result: Any, key: str) -> str | None:
    if isinstance(result, dict) and len(result) == 1 and isinstance(value := result.get(key), str):
        return value
    return None


def _progress_bar(label: str, progress: bool) -> ProgressBar | None:
    return ProgressBar(label) if progress else None


async def _download(
    config: Config, path: str, file_name: str | None, bar: ProgressBar | None = None
) -> None:
    assert config.server is not None
    chunks = get_from(config.server, path, config.allow_unauthorized)
    if file_name is None or file_name == "-":
        async with aclosing(chunks):
            async for chunk in chunks:
                output.write(chunk)
        output.flush()
        return
    try:
        file = open(file_name, "wb")  # noqa: SIM115, ASYNC230 - written chunk by chunk below
    except OSError as error:
        raise CliError(f"cannot write {file_name}: {error.strerror}") from None
    received = 0
    drawn = 0.0
    with file:
        try:
            async with aclosing(chunks):
                async for chunk in chunks:
                    file.write(chunk)
                    received += len(chunk)
                    if bar is not None and time.monotonic() - drawn >= REDRAW_INTERVAL:
                        drawn = time.monotonic()  # the size is unknown: the bar shows bytes
                        bar.label = f"{os.path.basename(file_name)} {format_bytes(received)}"
                        bar.update(None)
        except BaseException:
            if bar is not None:
                bar.finish(False)
            raise
    if bar is not None:
        bar.label = f"{os.path.basename(file_name)} {format_bytes(received)}"
        bar.finish(True)
    print(f"saved to {file_name}", file=sys.stderr)


def format_bytes(count: int) -> str:
    """`512 B`, `1.5 MiB`, `4.0 GiB`."""
    if count < 1024:
        return f"{count} B"
    exponent = min(3, (count.bit_length() - 1) // 10)
    return f"{count / 1024**exponent:.1f} {('KiB', 'MiB', 'GiB')[exponent - 1]}"


async def deliver(
    config: Config, result: Any, file_name: str | None, *, progress: bool = False
) -> None:
    """Act on a call's result: download a `$getFrom`, upload `@=FILE` to a `$sendTo` (each
    with a progress bar on stderr when `progress`), or print it."""
    assert config.server is not None
    if (path := single_key(result, "$getFrom")) is not None:
        await _download(config, path, file_name, _progress_bar(file_name or "", progress))
    elif (path := single_key(result, "$sendTo")) is not None:
        if file_name is None:
            raise UsageError("this method takes a file: add @=FILE")
        bar = _progress_bar(os.path.basename(file_name), progress)
        report = None if bar is None else lambda sent, size: bar.update(sent / (size or 1))
        try:
            text = await send_to(config.server, path, file_name, config.allow_unauthorized, report)
        except BaseException:
            if bar is not None:
                bar.finish(False)
            raise
        if bar is not None:
            bar.finish(True)
        output.write(text.encode() + (b"" if text.endswith("\n") else b"\n"))
        output.flush()
    else:
        output.print_json(result)


async def call_method(method: str, args: list[str], *, progress: bool) -> int:
    config = load_registered()
    async with registered_connection(config) as connection:
        info = await method_info(connection, method)
        schema = info.get("params") if info else None
        call_args = parse_args(args, schema if isinstance(schema, dict) else None)
        if progress:
            result = await call_with_progress(connection, method, call_args.params, info)
        else:
            result = await connection.call(method, call_args.params)
        await deliver(config, result, call_args.file, progress=progress)
    return 0


async def describe_method(method: str) -> str | None:
    """`xod-cli METHOD --help`: the method's signature and description, when registered."""
    from xod.cli.discovery import signature

    try:
        async with registered_connection() as connection:
            info = await method_info(connection, method)
    except CliError:
        return None
    if info is None:
        return None
    text = signature(method, info)
    if info.get("description"):
        text += f"\n  {info['description']}"
    if info.get("permission"):
        text += f"\n  permission: {info['permission']}"
    return text
