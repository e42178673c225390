"""`xod-cli rest get|post|put|patch|delete PATH [key=value…]` and `xod-cli rest watch PATH`:
the REST API `/rest/v0` with the registered token, as xo-cli's `rest` command does it.

`PATH` is relative to `/rest/v0` (`vms`, `vms/<id>/actions/snapshot`). For `get` and `delete`
the pairs are query parameters, sent as written (`fields=name_label,power_state`); for `post`,
`put` and `patch` they make the JSON body (values typed as for methods: `json:`, numbers,
true/false). JSON answers are printed indented, NDJSON line by line as it arrives.

`watch` streams `?ndjson=true&watch=true`: each change is printed as its line arrives; when the
connection drops, it reconnects with `since` (the last revision the server announced), so no
change is missed and nothing is fetched again.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from urllib.parse import quote, urlencode

import orjson

from xod.cli import output
from xod.cli.config import Config, load_registered
from xod.cli.errors import CliError, ExitCode, Unreachable, UsageError
from xod.cli.transfer import HttpResponse, http_request, ndjson_lines
from xod.cli.values import parse_args

BASE = "/rest/v0"
VERBS = ("get", "post", "put", "patch", "delete")
WITH_BODY = ("post", "put", "patch")
RECONNECT_DELAY = 1.0


def _pairs(args: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise UsageError(f"expected key=value, got {arg!r}")
        pairs.append((key, value))
    return pairs


def rest_path(path: str, query: list[tuple[str, str]]) -> str:
    path = path if path.startswith(f"{BASE}/") else f"{BASE}/{path.lstrip('/')}"
    path = quote(path, safe="/:@!$&'()*+,;=-._~%")
    return f"{path}?{urlencode(query)}" if query else path


def _headers(config: Config, body: bool) -> dict[str, str]:
    headers = {"Cookie": f"authenticationToken={config.token}"}
    if body:
        headers["Content-Type"] = "application/json"
    return headers


async def _failure(response: HttpResponse, body: AsyncIterator[bytes], what: str) -> CliError:
    raw = b"".join([chunk async for chunk in body])
    try:
        message = orjson.loads(raw).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        message = raw.decode("utf-8", "replace").strip() or response.reason
    if not isinstance(message, str):
        message = orjson.dumps(message).decode()
    code = ExitCode.TOKEN_REJECTED if response.status == 401 else ExitCode.SERVER_ERROR
    if response.status == 422:
        code = ExitCode.INVALID_PARAMS
    return CliError(f"{what}: HTTP {response.status} {message}", code)


async def request(verb: str, path: str, args: list[str], ndjson: bool) -> int:
    if verb not in VERBS:
        raise UsageError(f"xod-cli rest: unknown verb {verb!r} (one of {', '.join(VERBS)})")
    config = load_registered()
    assert config.server is not None
    body = None
    query: list[tuple[str, str]] = []
    if verb in WITH_BODY:
        body = orjson.dumps(parse_args(args, allow_file=False).params)
    else:
        query = _pairs(args)
        if ndjson:
            query.append(("ndjson", "true"))
    target = rest_path(path, query)
    what = f"{verb.upper()} {target}"
    async with http_request(
        config.server,
        verb.upper(),
        target,
        config.allow_unauthorized,
        headers=_headers(config, body is not None),
        body=body,
    ) as (response, chunks):
        if response.status >= 400:
            raise await _failure(response, chunks, what)
        content_type = response.headers.get("content-type", "")
        if "ndjson" in content_type:
            async for line in ndjson_lines(chunks):
                output.write(line + b"\n")
                output.flush()
        elif "json" in content_type:
            output.print_json(orjson.loads(b"".join([c async for c in chunks])))
        else:
            async for chunk in chunks:
                output.write(chunk)
            output.flush()
    return ExitCode.OK


async def watch(path: str, args: list[str]) -> int:
    config = load_registered()
    assert config.server is not None
    query = [*_pairs(args), ("ndjson", "true"), ("watch", "true")]
    since: int | None = None
    while True:
        resume = [("since", str(since))] if since is not None else []
        target = rest_path(path, query + resume)
        try:
            async with http_request(
                config.server,
                "GET",
                target,
                config.allow_unauthorized,
                headers=_headers(config, False),
            ) as (response, chunks):
                if response.status >= 400:
                    raise await _failure(response, chunks, f"watch {target}")
                async for line in ndjson_lines(chunks):
                    event = orjson.loads(line)
                    if event[0] == "revision":
                        since = event[1]  # where to resume: not printed
                        continue
                    output.write(line + b"\n")
                    output.flush()
        except Unreachable as error:
            print(f"xod-cli: {error}; reconnecting", file=sys.stderr, flush=True)
        await asyncio.sleep(RECONNECT_DELAY)
