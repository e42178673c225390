"""`xod-cli watch`: live object changes as they happen, like `kubectl get -w`.

Built on `xod.subscribe` (a filtered, revisioned change stream); after a lost connection it
reconnects and resumes from the last revision it printed in full, so nothing is missed. When
the server no longer has that revision (`gone`) it says so and starts over from the current
state. Against a server without `xod.subscribe` (xo-server), it falls back to the `all`
notifications, filtered here with the same complex-matcher language.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from xod.backoff import Backoff
from xod.cli import output
from xod.cli.config import Config, load_registered
from xod.cli.errors import CliError, RpcError, Unreachable
from xod.cli.rpc import RpcConnection
from xod.cli.session import registered_connection

METHOD_NOT_FOUND = -32601
RECONNECT_INITIAL = 0.2
RECONNECT_MAX = 5.0
# Objects per frame when xod splits a batch (xod/server/fanout.py CHUNK_OBJECTS): a frame with
# fewer is the last of its revision. (Exactly this many only costs a replay on resume.)
FULL_CHUNK = 500
TABLE_FIELDS = ("power_state",)  # shown by default when an object has them


def is_gone(error: RpcError) -> bool:
    """The server no longer keeps the history back to `since` (a 410-like answer)."""
    text = f"{error.error.get('message', '')} {error.data!r}".lower()
    return "gone" in text or error.code == 410


def entries(items: Any) -> Iterator[tuple[str, Any]]:
    """(id, object) pairs from an `{id: object}` map or a list of objects/ids."""
    if isinstance(items, dict):
        yield from items.items()
    elif isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                yield str(item.get("id")), item
            else:
                yield str(item), None


class Printer:
    """One line per change: NDJSON records for programs, aligned columns for people."""

    def __init__(self, ndjson: bool, fields: list[str]) -> None:
        self.ndjson = ndjson
        self.fields = fields
        self._header_done = False

    def enter(self, object_id: str, obj: Any, revision: Any) -> None:
        if self.ndjson:
            record = {"event": "enter", "revision": revision, "id": object_id, "object": obj}
            output.write(orjson.dumps(record) + b"\n")
        else:
            self._row("enter", object_id, obj if isinstance(obj, dict) else {})

    def exit(self, object_id: str, revision: Any) -> None:
        if self.ndjson:
            record = {"event": "exit", "revision": revision, "id": object_id}
            output.write(orjson.dumps(record) + b"\n")
        else:
            self._row("exit", object_id, {})

    def flush(self) -> None:
        output.flush()

    def _row(self, event: str, object_id: str, obj: dict[str, Any]) -> None:
        if not self._header_done:
            output.write(_columns("EVENT", "TYPE", "ID", "NAME", "FIELDS").encode())
            self._header_done = True
        shown = self.fields or [f for f in TABLE_FIELDS if f in obj]
        details = " ".join(f"{f}={_text(obj.get(f))}" for f in shown if f in obj)
        name = str(obj.get("name_label", ""))
        kind = str(obj.get("type", ""))
        output.write(_columns(event, kind, object_id, name, details).encode())


def _columns(event: str, kind: str, object_id: str, name: str, details: str) -> str:
    # Two spaces at least between columns, even when an id or a name outgrows its width.
    line = f"{event:<5}  {kind:<13}  {object_id:<36}  {name:<22}  {details}"
    return line.rstrip() + "\n"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


class Watcher:
    def __init__(self, config: Config, expression: str | None, fields: list[str], ndjson: bool):
        self.config = config
        self.expression = expression
        self.fields = fields
        self.printer = Printer(ndjson, fields)
        # The revision to resume from: every frame up to it has been printed. A batch may
        # span several frames of one revision (xod chunks a big snapshot or change by
        # FULL_CHUNK objects), so a revision counts once a frame of it comes with fewer
        # objects than a full chunk (its last one), or once a newer revision arrives.
        self.revision: Any = None
        self._pending: Any = None
        self.connected_once = False
        # Ids currently shown as inside the filter, to report them leaving it.
        self._visible: set[str] = set()
        self._predicate: Callable[[Any], bool] | None = None

    def _server_fields(self) -> list[str] | None:
        if not self.fields:
            return None
        if self.printer.ndjson:
            return self.fields
        return list(dict.fromkeys([*self.fields, "type", "name_label"]))

    async def run(self) -> int:
        backoff = Backoff(RECONNECT_INITIAL, RECONNECT_MAX)
        while True:
            try:
                async with registered_connection(self.config) as connection:
                    self.connected_once = True
                    backoff.reset()
                    await self._stream(connection)
            except Unreachable as error:
                if not self.connected_once:
                    raise
                print(f"xod-cli: {error.message}; reconnecting…", file=sys.stderr, flush=True)
                await asyncio.sleep(backoff.next())

    async def _stream(self, connection: RpcConnection) -> None:
        connection.listen()
        # Our subscription carries what we need; xod's `all` firehose would only be dropped.
        with contextlib.suppress(CliError):
            await connection.call("xod.setAllNotifications", {"enabled": False})
        params: dict[str, Any] = {}
        if self.expression is not None:
            params["filter"] = self.expression
        server_fields = self._server_fields()
        if server_fields:
            params["fields"] = server_fields
        if self.revision is not None:
            params["since"] = self.revision
        try:
            reply = await connection.call("xod.subscribe", params)
        except RpcError as error:
            if error.code == METHOD_NOT_FOUND:
                await self._stream_all(connection)
                return
            if "since" not in params or not is_gone(error):
                raise
            print(
                "xod-cli: the server no longer has the changes since revision"
                f" {self.revision}; starting again from the current state",
                file=sys.stderr,
                flush=True,
            )
            self.revision = self._pending = None
            del params["since"]
            reply = await connection.call("xod.subscribe", params)
        subscription = reply.get("subscription") if isinstance(reply, dict) else None
        async for message in connection.notifications():
            if message.get("method") != "xod.changes":
                continue
            change = message.get("params")
            if not isinstance(change, dict) or change.get("subscription") != subscription:
                continue
            revision = change.get("revision")
            self._seen(revision, change.get("enter"))
            for object_id, obj in entries(change.get("enter")):
                self._visible.add(object_id)
                self.printer.enter(object_id, obj, revision)
            for object_id, _ in entries(change.get("exit")):
                # A resumed stream also names objects that left while we were away without
                # knowing whether they matched: only those this watch has shown are news.
                if object_id in self._visible:
                    self._visible.discard(object_id)
                    self.printer.exit(object_id, revision)
            self.printer.flush()

    def _seen(self, revision: Any, enter: Any) -> None:
        if self._pending is not None and revision != self._pending:
            self.revision = self._pending
        self._pending = revision
        if len(enter or ()) < FULL_CHUNK:
            self.revision = revision

    async def _stream_all(self, connection: RpcConnection) -> None:
        """xo-server's way: every signed-in connection gets every change as `all`."""
        if self._predicate is None:
            from xod.filters import compile_filter

            self._predicate = compile_filter(self.expression)
        predicate = self._predicate
        fields = self._server_fields()
        async for message in connection.notifications():
            params = message.get("params")
            if message.get("method") != "all" or not isinstance(params, dict):
                continue
            kind = params.get("type")
            for object_id, obj in entries(params.get("items")):
                if kind == "enter" and obj and predicate(obj):
                    self._visible.add(object_id)
                    shown = output.pick(obj, fields) if fields else obj
                    self.printer.enter(object_id, shown, None)
                elif object_id in self._visible:
                    self._visible.discard(object_id)
                    self.printer.exit(object_id, None)
            self.printer.flush()


async def watch(expression: str | None, fields: list[str], ndjson: bool) -> int:
    return await Watcher(load_registered(), expression, fields, ndjson).run()
