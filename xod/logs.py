"""Logging: structlog for xod's own events, the stdlib `logging` records of every module and
library rendered the same way; JSON lines off a terminal, readable console output on one.

Secrets never reach the output: any field whose name says password / token / session / cookie /
secret / authorization is replaced by "[redacted]" (recursively, in `extra=` fields too), and the
HTTP access log drops query strings and the one-shot `/api/<token>` paths.

Modules log with `structlog.get_logger("xod.x")` or stdlib `logging.getLogger("xod.x")`; fields
given as `extra={"method": ..., "user": ..., "duration": ..., "outcome": ...}` on a stdlib record
become top-level fields, the same as keyword arguments of a structlog call.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import orjson
import structlog
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

REDACTED = "[redacted]"
# Field names (lower-case, '_' and '-' removed) that hold secrets, and name fragments that do.
_SECRET_NAMES = frozenset({"session", "sessionid", "sessionref", "authorization", "cookie"})
_SECRET_FRAGMENTS = ("password", "passwd", "token", "secret", "credential", "apikey", "cookie")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR


def is_secret_name(name: str) -> bool:
    normalized = name.lower().replace("_", "").replace("-", "")
    return normalized in _SECRET_NAMES or any(f in normalized for f in _SECRET_FRAGMENTS)


# The user-info part of a URL (`nats://user:password@host`, `https://token@host`): a NATS or
# XAPI address may carry credentials, whatever the field that logs it is called.
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def _redact_url_credentials(value: str) -> str:
    return _URL_CREDENTIALS.sub(f"{REDACTED}@", value) if "@" in value else value


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return _redact_url_credentials(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_name(k) else _redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: blank out every secret-named field, at any depth."""
    for key, value in event_dict.items():
        if key.startswith("_"):
            continue
        if key == "event":
            if isinstance(value, str):  # a message formatted with a URL in it
                event_dict[key] = _redact_url_credentials(value)
            continue
        if is_secret_name(key):
            event_dict[key] = REDACTED
        elif isinstance(value, (str, Mapping, list, tuple)):
            event_dict[key] = _redact_value(value)
    return event_dict


def _orjson_dumps(obj: Any, **_kwargs: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def _renderer(fmt: str, stream: TextIO) -> list[Any]:
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    if use_console:
        return [structlog.dev.ConsoleRenderer(colors=stream.isatty())]
    return [
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(serializer=_orjson_dumps),
    ]


def _shared_processors() -> list[Any]:
    return [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


_handler: logging.Handler | None = None


def setup(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """(Re)configure logging; safe to call again on SIGHUP (level and format change in place)."""
    global _handler
    stream = stream or sys.stderr
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *_shared_processors()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderer(fmt, stream),
        ],
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(stream)
    _handler.setFormatter(formatter)
    root.addHandler(_handler)
    set_level(level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # the level may change on SIGHUP
    )


def set_level(level: str) -> None:
    numeric = _LEVELS[level]
    logging.getLogger().setLevel(numeric)
    # Libraries' chatter stays at warning unless xod itself is at debug.
    library_level = numeric if numeric == logging.DEBUG else max(numeric, logging.WARNING)
    for name in ("aiohttp", "asyncio"):
        logging.getLogger(name).setLevel(library_level)
    # The access log is xod's own (RedactingAccessLogger): it follows xod's level.
    logging.getLogger("aiohttp.access").setLevel(numeric)


def get_logger(name: str = "xod") -> Any:
    return structlog.get_logger(name)


_ONE_SHOT_PATH = re.compile(r"^(/api/)[^/]+$")


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp access log without query strings (tokens travel there) nor one-shot URLs."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        path = _ONE_SHOT_PATH.sub(r"\1…", request.path)
        self.logger.info(
            "http request",
            extra={
                "http_method": request.method,
                "path": path,
                "status": response.status,
                "duration": round(time, 6),
                "remote": request.remote,
            },
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
