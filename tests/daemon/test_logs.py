"""Log output: JSON lines off a terminal, fields from structlog and stdlib alike, no secrets."""

from __future__ import annotations

import io
import json
import logging

import structlog

from xod import logs


def test_json_lines_with_fields_and_no_secrets() -> None:
    stream = io.StringIO()
    logs.setup("info", "auto", stream)  # a StringIO is not a terminal: JSON
    try:
        structlog.get_logger("xod.test").info(
            "signed in", user="u1", password="hunter2", session_id="OpaqueRef:s",
            params={"email": "a@b", "authenticationToken": "tok-1", "nested": [{"token": "tok-2"}]},
        )  # fmt: skip
        logging.getLogger("xod.api").info(
            "call", extra={"method": "session.signIn", "duration": 0.01, "token": "tok-3"}
        )
        logging.getLogger("xod.test").debug("invisible at info")
    finally:
        logs.setup("info", "auto")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["signed in", "call"]
    first, second = lines
    assert first["user"] == "u1" and first["level"] == "info" and first["logger"] == "xod.test"
    assert first["params"]["email"] == "a@b"
    assert second["method"] == "session.signIn" and second["duration"] == 0.01
    text = stream.getvalue()
    for secret in ("hunter2", "OpaqueRef:s", "tok-1", "tok-2", "tok-3"):
        assert secret not in text
    assert text.count(logs.REDACTED) == 5


def test_level_changes_in_place() -> None:
    stream = io.StringIO()
    logs.setup("warning", "json", stream)
    try:
        log = structlog.get_logger("xod.test")
        log.info("hidden")
        logs.set_level("debug")
        log.debug("shown")
    finally:
        logs.setup("info", "auto")
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["shown"]


def test_secret_names() -> None:
    for name in (
        "password",
        "XAPI_PASSWORD",
        "authenticationToken",
        "session",
        "sessionId",
        "Cookie",
    ):
        assert logs.is_secret_name(name)
    for name in ("user", "method", "sessions_open", "duration"):
        assert not logs.is_secret_name(name)


def test_credentials_in_urls_are_redacted() -> None:
    """A NATS or XAPI URL may carry a user and password (or a token) before its host: the
    log keeps the URL and blanks its credentials, whatever the field is called."""
    stream = io.StringIO()
    logs.setup("info", "auto", stream)
    try:
        structlog.get_logger("xod.test").info(
            "cluster",
            nats=["nats://alice:s3cret@127.0.0.1:4222", "nats://t0ken@127.0.0.1:4223"],
            master="https://root:pw1@127.0.0.1:443/",
            plain="nats://127.0.0.1:4224",
        )
    finally:
        logs.setup("info", "auto")
    text = stream.getvalue()
    for secret in ("s3cret", "t0ken", "pw1", "alice", "root"):
        assert secret not in text
    line = json.loads(text)
    assert line["nats"] == [
        f"nats://{logs.REDACTED}@127.0.0.1:4222",
        f"nats://{logs.REDACTED}@127.0.0.1:4223",
    ]
    assert line["master"] == f"https://{logs.REDACTED}@127.0.0.1:443/"
    assert line["plain"] == "nats://127.0.0.1:4224"
