"""Fuzzing the JSON-RPC edge: hypothesis strategies for request frames of every shape (JSON and
msgpack), a xod + simulator running in a thread of its own, and the checks every reply must
pass. Used by tests/api/test_fuzz_edge.py (a few thousand frames) and bench/fuzz_api.py.

Frames are sent one at a time by a blocking client, each followed by a sentinel call whose
answer says the frame's own replies are in (calls run concurrently: a slow reply may come
after the sentinel, so every reply is checked on its own, not tied to its frame).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import math
import re
import tempfile
import threading
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import orjson
import structlog
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD, connect, running_xod
from xod.api.methods import build_registry
from xod.api.requests import MAX_NESTING
from xod.sim.pool import SimConfig
from xod.sim.simulator import Simulator

MSGPACK_SUBPROTOCOL = "xod.msgpack"
SENTINEL_METHOD = "system.getServerVersion"
# Methods whose success leaves something behind that later frames would trip over (a signed-out
# fuzzer, servers connecting to random hosts, users and tokens piling up in the store).
LASTING_EFFECTS = frozenset({"session.signOut", "server.add", "user.create", "token.create"})
# What a reply must never say: Python's own words instead of an error meant for clients.
PYTHON_LEAK = re.compile(
    r"unknown error|has no attribute|[Rr]ecursion|cannot convert|endswith|Traceback|NoneType"
    r"|not subscriptable|unhashable|object is not|positional argument|unsupported operand"
    r"|invalid literal|not supported between|out of range|must be real number|JSONEncodeError"
    r"|Type is not|Integer exceeds"
)
REPLY_TIMEOUT = 30.0
# The dispatcher's log line for a call the pool refused with an XAPI error xod does not map.
_XAPI_REFUSAL = re.compile(r"^[\w.]+ failed: XapiError: ")

_REGISTRY = build_registry()
METHOD_NAMES = [name for name in _REGISTRY.names() if name not in LASTING_EFFECTS]
PARAM_NAMES = sorted(
    {name for m in _REGISTRY.methods() for name in (m.params or {}) if name != "*"}
    | {"_async", "_log", "id?", "filter?"}
)

# -- strategies ----------------------------------------------------------------------------------

_JSON_INTS = st.integers(min_value=-(2**70), max_value=2**70)
_MSGPACK_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)
_FLOATS = st.floats(allow_nan=True, allow_infinity=True)
_TEXT = st.text(max_size=12) | st.sampled_from(["", "*", "$or", "VM", "id", "~/", "a" * 200])


def _values(msgpack_only: bool, ids: list[str]) -> st.SearchStrategy[Any]:
    ints = _MSGPACK_INTS if msgpack_only else _JSON_INTS
    scalars: st.SearchStrategy[Any] = st.none() | st.booleans() | ints | _FLOATS | _TEXT
    if ids:
        scalars |= st.sampled_from(ids)
    keys: st.SearchStrategy[Any] = _TEXT | st.sampled_from(PARAM_NAMES)
    if msgpack_only:
        scalars |= st.binary(max_size=8) | st.builds(
            msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4)
        )
        keys |= st.binary(max_size=4) | st.integers(-5, 5) | st.none() | st.booleans()
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )


def _deep(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Objects and arrays nested around the limit and beyond it (see `_deep_frames` for depths
    the encoders refuse)."""
    depths = st.sampled_from([MAX_NESTING - 3, MAX_NESTING + 1, 100])

    def nest(depth: int, leaf: Any, use_lists: list[bool]) -> Any:
        value = leaf
        for level in range(depth):
            value = [value] if use_lists[level % len(use_lists)] else {"filter": value}
        return value

    return st.builds(nest, depths, values, st.lists(st.booleans(), min_size=1, max_size=3))


def _params(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    named = st.dictionaries(st.sampled_from(PARAM_NAMES), values, max_size=5)
    return named | values | _deep(values)


def _envelopes(msgpack_only: bool, ids: list[str]) -> st.SearchStrategy[dict[Any, Any]]:
    values = _values(msgpack_only, ids)
    absent = st.just(None)
    member = {
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | values | absent,
        "id": st.integers(-(2**53), 2**53) | _TEXT | st.none() | values | absent,
        "method": st.sampled_from(METHOD_NAMES) | _TEXT | values | absent,
        "params": _params(values) | absent,
    }

    def assemble(parts: dict[str, Any], extra: dict[Any, Any], drop_id: bool) -> dict[Any, Any]:
        envelope = {k: v for k, v in parts.items() if v is not None or k == "id"}
        if drop_id:
            envelope.pop("id", None)  # a notification
        envelope.update(extra)
        return envelope

    keys: st.SearchStrategy[Any] = st.sampled_from(["extra", "error", "result"])
    if msgpack_only:
        keys |= st.binary(max_size=3) | st.integers(0, 3)
    return st.builds(
        assemble,
        st.fixed_dictionaries(member),
        st.dictionaries(keys, values, max_size=1),
        st.sampled_from([False, False, False, True]),
    )


def _deep_frames(as_msgpack: bool) -> st.SearchStrategy[bytes | str]:
    """A call whose params nest far deeper than xod allows, up to beyond what orjson and msgpack
    decode, directly or under a param name (written by hand: the encoders refuse such depths)."""

    def frame(method: str, depth: int, as_object: bool, under: str | None) -> bytes | str:
        call = {"id": 7, "jsonrpc": "2.0", "method": method}
        if as_msgpack:
            level = b"\x81\xa1a" if as_object else b"\x91"
            deep = level * depth + b"\xc0"
            if under is not None:
                deep = b"\x81" + msgpack.packb(under) + deep
            head = msgpack.packb(call)
            return bytes([head[0] + 1]) + head[1:] + msgpack.packb("params") + deep
        opening, closing = ('{"a":', "}") if as_object else ("[", "]")
        deep_text = f"{opening * depth}null{closing * depth}"
        if under is not None:
            deep_text = f'{{"{under}":{deep_text}}}'
        return f'{orjson.dumps(call).decode()[:-1]},"params":{deep_text}}}'

    depths = st.sampled_from([1000, 300, 1020, 1030, 5000])
    under = st.sampled_from(["id", "filter", None, "email", "password"])
    return st.builds(frame, st.sampled_from(METHOD_NAMES), depths, st.booleans(), under)


def _typed(
    prop: dict[str, Any],
    values: st.SearchStrategy[Any],
    strings: st.SearchStrategy[str],
    numbers: st.SearchStrategy[Any],
) -> st.SearchStrategy[Any]:
    """Values of the type an XO-dialect property declares, edge values included."""
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    kinds = prop.get("type")
    options: list[st.SearchStrategy[Any]] = []
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        if kind == "string":
            options.append(strings)
        elif kind in ("number", "integer"):
            options.append(numbers)
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "null":
            options.append(st.none())
        elif kind == "array":
            items = prop.get("items")
            inner = _typed(items, values, strings, numbers) if isinstance(items, dict) else values
            options.append(st.lists(inner, max_size=3))
        elif kind == "object" and isinstance(prop.get("properties"), dict):
            options.append(_typed_params(prop["properties"], values, strings, numbers))
        else:
            options.append(values)
    return st.one_of(options)


def _typed_params(
    properties: dict[str, Any],
    values: st.SearchStrategy[Any],
    strings: st.SearchStrategy[str],
    numbers: st.SearchStrategy[Any],
) -> st.SearchStrategy[dict[str, Any]]:
    required: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    for name, prop in properties.items():
        if name == "*":
            continue
        target = optional if prop.get("optional") or "default" in prop else required
        target[name] = _typed(prop, values, strings, numbers)
    return st.fixed_dictionaries(required, optional=optional)


def _typed_calls(msgpack_only: bool, ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Calls of known methods with params of the declared types: what gets past validation to
    the handlers, with ids of real objects and numbers at the edges."""
    values = _values(msgpack_only, ids)
    strings = (st.sampled_from(ids) | _TEXT) if ids else _TEXT
    top = 2**64 - 1 if msgpack_only else 2**70
    numbers = (
        st.integers(-(2**63), top)
        | st.sampled_from([0, -1, 1, 2**31, 2**53 + 1, 2**63, 1e308, -1e308, 5e-324, 0.5])
        | st.floats(allow_nan=False, allow_infinity=False)
    )
    methods = [m for m in _REGISTRY.methods() if m.name in METHOD_NAMES and m.params]

    def call(method: Any, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": 1, "jsonrpc": "2.0", "method": method.name, "params": params}

    return st.sampled_from(methods).flatmap(
        lambda m: st.builds(
            call, st.just(m), _typed_params(m.params or {}, values, strings, numbers)
        )
    )


def _encode(message: Any, as_msgpack: bool) -> bytes | str | None:
    """The frame for `message`, or None when the format cannot say it."""
    try:
        if as_msgpack:
            return msgpack.packb(message, use_bin_type=True)
        # The standard library writes what orjson would refuse (NaN, 2**70): xod must parse it.
        return json.dumps(message, allow_nan=True)
    except (TypeError, ValueError, OverflowError, RecursionError, msgpack.PackException):
        return None


def frames(msgpack_only: bool, ids: list[str]) -> st.SearchStrategy[bytes | str]:
    """Whole frames: requests, batches (empty, mixed, over the limit), and garbage."""
    envelope = _envelopes(msgpack_only, ids)
    message = (
        envelope
        | _typed_calls(msgpack_only, ids)
        | st.lists(envelope | _typed_calls(msgpack_only, ids), max_size=4)
        | st.lists(st.just({"id": 1, "method": SENTINEL_METHOD}), min_size=101, max_size=101)
        | _values(msgpack_only, ids)
    )
    encoded = message.map(lambda m: _encode(m, msgpack_only)).filter(lambda f: f is not None)
    garbage = st.binary(max_size=40) | st.text(max_size=40)
    return encoded | garbage | _deep_frames(msgpack_only)  # type: ignore[return-value]  # the filter dropped the Nones


# -- the target ----------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class FuzzTarget:
    """xod connected to a simulated pool, in a thread with its own event loop."""

    url: str = ""
    object_ids: list[str] = field(default_factory=list)
    log: _Records = field(default_factory=_Records)
    structlog_events: list[MutableMapping[str, Any]] = field(default_factory=list)
    # Fuzzing clients by format (msgpack or not), signed in before any fuzz: the fuzz's failed
    # sign-ins soon throttle new ones from this address.
    clients: dict[bool, FuzzClient] = field(default_factory=dict)

    def problems_logged(self) -> list[str]:
        """Log lines that show a failure inside xod (a traceback, a call that failed), but for
        a pool's refusal xod passed on as it is (see `xapi_refusals`)."""
        lines = [
            record.getMessage()
            for record in self.log.records
            if record.exc_info or record.name.startswith(("xod", "asyncio", "aiohttp"))
        ]
        lines += [str(e) for e in self.structlog_events if e.get("log_level") == "error"]
        return [line for line in lines if not _XAPI_REFUSAL.search(line)]

    def xapi_refusals(self) -> list[str]:
        """XAPI errors xod has no XO error for: answered with the pool's own error code (-32000
        and XAPI's code in `data`), and logged as a call that failed."""
        return [r.getMessage() for r in self.log.records if _XAPI_REFUSAL.search(r.getMessage())]


@contextlib.contextmanager
def fuzz_target(state_dir: Path | None = None) -> Iterator[FuzzTarget]:
    target = FuzzTarget()
    ready = threading.Event()
    stop: asyncio.Event | None = None
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    async def serve(directory: Path) -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with (
            Simulator(SimConfig(hosts=2, vms=6, templates=2, seed=3)) as sim,
            running_xod(directory) as app,
            connect(app) as admin,
        ):
            await admin.sign_in()
            await admin.call(
                "server.add",
                {"host": sim.master_url, "username": "root", "password": "password"},
            )
            deadline = time.monotonic() + 20
            while not app.objects and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # the pool's objects reach the cache
            assert app.objects, "the simulated pool never synced within 20 s"
            target.object_ids = [*app.objects.by_type("VM"), *app.objects.by_type("host")]
            target.url = f"ws://{app.config.host}:{app.port}/api/"
            ready.set()
            await stop.wait()

    def run() -> None:
        asyncio.set_event_loop(loop)
        with tempfile.TemporaryDirectory() as directory:
            try:
                loop.run_until_complete(serve(state_dir or Path(directory)))
            except BaseException as error:
                failure.append(error)
                ready.set()

    root = logging.getLogger()
    root.addHandler(target.log)
    thread = threading.Thread(target=run, name="xod-under-fuzz", daemon=True)
    with structlog.testing.capture_logs() as events:
        target.structlog_events = events
        thread.start()
        try:
            assert ready.wait(60), "xod and the simulator did not start within 60 s"
            if failure:
                raise failure[0]
            with contextlib.ExitStack() as clients:
                for as_msgpack in (False, True):
                    client = clients.enter_context(FuzzClient(target.url, as_msgpack))
                    target.clients[as_msgpack] = client
                yield target
        finally:
            if stop is not None:
                loop.call_soon_threadsafe(stop.set)
            thread.join(30)
            root.removeHandler(target.log)


# -- clients -------------------------------------------------------------------------------------


class FuzzClient:
    """A blocking client, signed in as the admin (the most of the API to reach)."""

    def __init__(self, url: str, as_msgpack: bool) -> None:
        self.as_msgpack = as_msgpack
        protocols = [Subprotocol(MSGPACK_SUBPROTOCOL)] if as_msgpack else None
        # Read at once whatever comes (no queue limit): a client waiting for its turn must not
        # stop reading, or it misses pongs and xod's keepalive.
        self._connection = ws_connect(
            url, subprotocols=protocols, max_size=2**26, max_queue=None, ping_interval=None
        )
        self.ws: ClientConnection = self._connection
        self._sentinels = 0
        # Replies to fuzz frames by outcome ("result" or the error code): what the fuzz reached.
        self.outcomes: collections.Counter[str | int] = collections.Counter()

    def __enter__(self) -> FuzzClient:
        self.ws = self._connection.__enter__()
        signed_in = self.call("session.signIn", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert "error" not in signed_in, signed_in
        # The fuzz changes objects: no need for every client to hear of each change.
        assert self.call("xod.setAllNotifications", {"enabled": False}).get("result") is False
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._connection.__exit__(*exc_info)

    def _send(self, message: Any) -> None:
        self.ws.send(msgpack.packb(message) if self.as_msgpack else orjson.dumps(message).decode())

    def _receive(self) -> list[Any]:
        data = self.ws.recv(timeout=REPLY_TIMEOUT)
        message = msgpack.unpackb(data) if isinstance(data, bytes) else orjson.loads(data)
        return message if isinstance(message, list) else [message]

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._sentinels += 1
        request_id = f"sentinel-{self._sentinels}"
        self._send({"id": request_id, "jsonrpc": "2.0", "method": method, "params": params or {}})
        while True:
            for reply in self._receive():
                if isinstance(reply, dict) and reply.get("id") == request_id:
                    return reply
                check_reply(reply)
                if "id" in reply:
                    self.outcomes[reply["error"]["code"] if "error" in reply else "result"] += 1

    def send_frame(self, frame: bytes | str) -> None:
        """Send one fuzz frame, then check every reply that comes before the sentinel's."""
        self.send_frames([frame])

    def send_frames(self, frames: list[bytes | str]) -> None:
        for frame in frames:
            self.ws.send(frame)
        sentinel = self.call(SENTINEL_METHOD)
        assert sentinel.get("result"), sentinel


def check_reply(reply: Any) -> None:
    """A server message on a fuzzed connection: a valid JSON-RPC response with a clear error, or
    a notification xod sends on its own."""
    assert isinstance(reply, dict), reply
    if "method" in reply and "id" not in reply:
        return  # `all` or `xod.changes`: xod's own notifications
    assert reply.get("jsonrpc") == "2.0", reply
    assert ("result" in reply) != ("error" in reply), reply
    request_id = reply.get("id")
    assert request_id is None or type(request_id) in (int, float, str), reply
    if "error" in reply:
        error = reply["error"]
        assert type(error.get("code")) is int, reply
        data = error.get("data") if isinstance(error.get("data"), dict) else {}
        # An exception no one meant for clients (admins are shown its Python name; an XAPI
        # error the pool raised comes with its XAPI code and is the pool's answer).
        assert not (error["code"] == -32000 and "name" in data and "code" not in data), reply
        message = error.get("message")
        assert isinstance(message, str) and message, reply
        assert not PYTHON_LEAK.search(message), reply
        for entry in data.get("errors") or []:
            assert not PYTHON_LEAK.search(str(entry.get("message"))), reply


@dataclass
class Latency:
    """Another client calling `system.getServerVersion` in a loop while the fuzzer runs."""

    url: str
    slowest: float = 0.0
    calls: int = 0
    samples: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    error: BaseException | None = None

    def __enter__(self) -> Latency:
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(REPLY_TIMEOUT + 5)

    def _run(self) -> None:
        try:
            with ws_connect(self.url) as ws:
                while not self._stop.is_set():
                    started = time.perf_counter()
                    ws.send(orjson.dumps({"id": 1, "jsonrpc": "2.0", "method": SENTINEL_METHOD}))
                    reply = orjson.loads(ws.recv(timeout=REPLY_TIMEOUT))
                    assert reply.get("result"), reply
                    elapsed = time.perf_counter() - started
                    self.samples.append(elapsed)
                    self.slowest = max(self.slowest, elapsed)
                    self.calls += 1
                    self._stop.wait(0.02)
        except BaseException as error:
            self.error = error

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, math.floor(fraction * len(ordered)))]
