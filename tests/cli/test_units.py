"""The CLI's pure parts: values, error wording, list-commands lines, URLs, the bar, picking."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from xod.cli.config import Config
from xod.cli.discovery import expand_braces, format_methods, matcher, signature
from xod.cli.errors import ExitCode, RpcError, UsageError, param_path
from xod.cli.main import split_field_flags
from xod.cli.output import pick
from xod.cli.progress import render
from xod.cli.rpc import api_url, http_url
from xod.cli.values import parse_args, parse_value
from xod.cli.watch import FULL_CHUNK, Watcher, entries, is_gone


def test_values_follow_xo_cli_and_the_params_schema() -> None:
    assert parse_value("k", 'json:[1, {"a": null}]') == [1, {"a": None}]
    assert parse_value("k", "true") is True and parse_value("k", "false") is False
    assert parse_value("k", "42") == 42 and parse_value("k", "-1.5e3") == -1500.0
    assert parse_value("k", "007") == "007" and parse_value("k", "web-01") == "web-01"
    # The schema decides: a string param keeps "123", a boolean refuses "yes" by name.
    assert parse_value("name", "123", {"type": "string"}) == "123"
    assert parse_value("n", "3", {"type": ["number", "string"]}) == 3
    assert parse_value("n", "x", {"type": ["number", "string"]}) == "x"
    with pytest.raises(UsageError, match="force: expected boolean"):
        parse_value("force", "yes", {"type": "boolean"})
    with pytest.raises(UsageError, match="count: expected integer"):
        parse_value("count", "1.5", {"type": "integer"})
    with pytest.raises(UsageError, match="tags: invalid JSON"):
        parse_value("tags", "json:[", None)

    parsed = parse_args(["id=abc", "force=true", "@=out.xva", "note?=x=y"])
    assert parsed.params == {"id": "abc", "force": True, "note?": "x=y"}
    assert parsed.file == "out.xva"
    with pytest.raises(UsageError, match="expected key=value"):
        parse_args(["oops"])


def test_rpc_errors_name_their_param_paths_and_exit_codes() -> None:
    invalid = RpcError(
        "vm.set",
        {
            "message": "invalid parameters",
            "code": 10,
            "data": {
                "errors": [
                    {
                        "instancePath": "",
                        "keyword": "required",
                        "params": {"missingProperty": "id"},
                        "message": "must have required property 'id'",
                    },
                    {
                        "instancePath": "/cpus",
                        "keyword": "type",
                        "params": {},
                        "message": "must be number",
                    },
                ]
            },
        },
    )
    assert invalid.exit_code == ExitCode.INVALID_PARAMS
    assert invalid.message == (
        "invalid parameters for vm.set: id: must have required property 'id'; cpus: must be number"
    )
    assert param_path({"instancePath": "/a/b", "keyword": "x"}) == "a.b"
    assert (
        param_path(
            {
                "instancePath": "",
                "keyword": "additionalProperties",
                "params": {"additionalProperty": "bogus"},
            }
        )
        == "bogus"
    )
    unknown = RpcError("a.b", {"code": -32601, "message": "method not found: a.b"})
    assert unknown.exit_code == ExitCode.UNKNOWN_METHOD
    failed = RpcError(
        "vm.start", {"code": 13, "message": "VM state is Running but should be Halted"}
    )
    assert failed.exit_code == ExitCode.SERVER_ERROR and "code 13" in failed.message


def test_list_commands_lines_match_xo_cli() -> None:
    info = {
        "params": {
            "id": {"type": "string"},
            "force": {"type": "boolean", "optional": True},
            "forceShutdownDelay": {"type": "number", "default": 0},
            "tags": {"type": ["array", "null"], "optional": True},
            "anything": {},
        },
        "description": "stop a VM",
    }
    assert signature("vm.stop", info) == (
        "vm.stop id=<string> [force=<boolean>] [forceShutdownDelay=<number>]"
        " [tags=<array|null>] anything=<unknown type>"
    )
    text = format_methods({"vm.stop": info, "a.b": {"params": {}}})
    assert text.splitlines() == ["a.b", signature("vm.stop", info), "  stop a VM"]
    assert expand_braces("{user,group}.*") == ["user.*", "group.*"]
    wanted = matcher(["{user,group}.get*", "vm.st*"])
    assert [
        n
        for n in ("user.getAll", "group.getAll", "user.set", "vm.start", "vm.stop", "vm.set")
        if wanted(n)
    ] == ["user.getAll", "group.getAll", "vm.start", "vm.stop"]
    assert matcher([])("anything")


def test_urls_like_xo_lib() -> None:
    assert api_url("http://host:8080/") == "ws://host:8080/api/"
    assert api_url("https://host/xo//") == "wss://host/xo/api/"
    assert api_url("host.example") == "wss://host.example/api/"
    assert http_url("ws://host:1", "/api/abc") == "http://host:1/api/abc"
    assert http_url("https://host/xo", "/api/abc") == "https://host/api/abc"
    with pytest.raises(UsageError):
        api_url("ftp://host")


def test_progress_bar_rendering() -> None:
    assert render("vm.start", 0.5, 1.25, 80) == (
        "vm.start [" + "█" * 20 + "░" * 20 + "]  50%    1.2s"
    )
    narrow = render("vm.start", 1.0, 0.0, 30)
    assert "100%" in narrow and "░" not in narrow
    assert "…%" in render("vm.start", None, 0.0)


def test_pick_fields_entries_and_field_flags() -> None:
    obj = {"id": "1", "name_label": "a", "CPUs": {"max": 4, "number": 2}}
    assert pick(obj, ["name_label", "CPUs.number", "missing", "id.x"]) == {
        "name_label": "a",
        "CPUs": {"number": 2},
    }
    assert split_field_flags(["--name_label", "type=VM", "--filter", "x", "--limit=3"]) == (
        ["name_label"],
        ["type=VM", "--filter", "x", "--limit=3"],
    )
    assert list(entries({"a": {"x": 1}})) == [("a", {"x": 1})]
    assert list(entries(["a", "b"])) == [("a", None), ("b", None)]


def test_gone_is_recognised() -> None:
    gone = RpcError(
        "xod.subscribe",
        {
            "message": "revision 3 is gone: resubscribe without since",
            "code": 410,
            "data": {"revision": 3, "oldest": 5, "current": 9},
        },
    )
    assert is_gone(gone)
    assert not is_gone(RpcError("xod.subscribe", {"message": "invalid parameters", "code": 10}))


def test_watch_resumes_only_from_a_complete_revision() -> None:
    watcher = Watcher(Config(server="http://x", token="t"), None, [], ndjson=True)
    full_chunk: dict[str, Any] = {str(i): {} for i in range(FULL_CHUNK)}
    watcher._seen(5, full_chunk)  # a chunked snapshot: more frames of revision 5 may follow
    assert watcher.revision is None
    watcher._seen(5, {"last": {}})
    assert watcher.revision == 5
    watcher._seen(6, full_chunk)
    assert watcher.revision == 5
    watcher._seen(7, None)  # a newer revision completes 6, and an exit-only frame is complete
    assert watcher.revision == 7


class _XoServerLike:
    """What a server without xod.subscribe sends (xo-server's `all`); no such peer runs here."""

    def __init__(self, messages: list[dict]) -> None:
        self.messages = messages

    async def notifications(self):
        for message in self.messages:
            yield message


async def test_watch_falls_back_to_all_notifications(capfdbinary) -> None:
    watcher = Watcher(Config(server="http://x", token="t"), "type:VM", [], ndjson=True)
    vm = {"id": "v1", "type": "VM", "power_state": "Running"}

    def all_(kind: str, items: dict) -> dict:
        return {"jsonrpc": "2.0", "method": "all", "params": {"type": kind, "items": items}}

    messages = [
        all_("enter", {"v1": vm, "h1": {"id": "h1", "type": "host"}}),
        all_("enter", {"v1": {**vm, "type": "SR"}}),  # no longer matches: it left the view
        all_("exit", {"v1": 0, "h1": 0}),  # neither is shown any more: nothing to say
        all_("enter", {"v1": vm}),
        all_("exit", {"v1": 0}),
    ]
    await watcher._stream_all(_XoServerLike(messages))  # type: ignore[arg-type]  # a stand-in for the client
    lines = [orjson.loads(line) for line in capfdbinary.readouterr().out.splitlines()]
    assert [(r["event"], r["id"]) for r in lines] == [
        ("enter", "v1"),
        ("exit", "v1"),
        ("enter", "v1"),
        ("exit", "v1"),
    ]
    assert lines[0]["object"] == vm
