"""The pure parts of the fan-out: spliced `xod.changes` frames decode to exactly the message a
per-subscription encoding would give, in both wire formats; projections and scopes."""

from __future__ import annotations

import msgpack
import orjson
import pytest
from websockets.frames import Frame
from websockets.streams import StreamReader

from xod.api.subscriptions import Scope, compile_projection, scope_key
from xod.cache.store import ChangeBatch
from xod.server.frames import JSON, MSGPACK, ChangesTemplate, all_frames, changes_message


def _parse(data: bytes) -> Frame:
    """Parse one server frame with the websockets library's own frame parser."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        while True:
            next(parser)
    except StopIteration as done:
        assert reader.at_eof()
        return done.value


@pytest.mark.parametrize("size", [0, 10, 2000, 70_000])
@pytest.mark.parametrize("fmt", [JSON, MSGPACK], ids=["json", "msgpack"])
def test_spliced_frame_is_the_full_message(fmt, size: int) -> None:
    enter = {f"id-{i}": {"id": f"id-{i}", "name_label": "x" * (i % 7)} for i in range(size // 10)}
    exit_ids = ["gone-1", "gone-2"]
    template = ChangesTemplate(fmt, 16, 42, enter, exit_ids)
    for subscription in ("0123456789abcdef", "fedcba9876543210"):
        frame = _parse(template.frame(subscription.encode()))
        assert frame.opcode.name == ("BINARY" if fmt.binary else "TEXT")
        decoded = msgpack.unpackb(frame.data) if fmt.binary else orjson.loads(frame.data)
        assert decoded == changes_message(subscription, 42, enter, exit_ids)


def test_all_frames_enter_then_exit_with_zero() -> None:
    frames = [orjson.loads(_parse(f).data) for f in all_frames(JSON, {"a": {"id": "a"}}, ["b"])]
    assert frames == [
        {
            "jsonrpc": "2.0",
            "method": "all",
            "params": {"type": "enter", "items": {"a": {"id": "a"}}},
        },
        {"jsonrpc": "2.0", "method": "all", "params": {"type": "exit", "items": {"b": 0}}},
    ]
    assert all_frames(JSON, {}, []) == []


def test_projection_keeps_dotted_paths() -> None:
    project = compile_projection(["id", "CPUs.number", "other.deep.x", "tags"])
    assert project is not None
    obj = {"id": "v", "CPUs": {"number": 2, "max": 4}, "tags": ["a"], "memory": 1}
    assert project(obj) == {"id": "v", "CPUs": {"number": 2}, "tags": ["a"]}
    assert compile_projection(None) is None and compile_projection([]) is None


def test_scope_tracks_objects_entering_and_leaving() -> None:
    scope = Scope(scope_key({"type": "VM"}, ["id"]), {"type": "VM"}, ["id"])
    scope.load({"v1": {"id": "v1", "type": "VM"}, "h1": {"id": "h1", "type": "host"}})
    assert scope.snapshot({}) == {"v1": {"id": "v1"}}
    delta = scope.apply(
        ChangeBatch(
            2,
            {"v1": {"id": "v1", "type": "VM-template"}, "v2": {"id": "v2", "type": "VM"}},
            ["h1"],
        )
    )
    assert (delta.revision, delta.enter, delta.exit) == (2, {"v2": {"id": "v2"}}, ["v1"])
    assert scope.snapshot({}) == {"v2": {"id": "v2"}}
    assert scope_key({"b": 1, "a": 2}, None) == scope_key({"a": 2, "b": 1}, None)
