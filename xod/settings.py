"""Every setting xod has, declared once: `SETTINGS` (section, key, type, default, check,
one-line doc), the names renamed in this release (`RENAMED`) and the ones a running daemon
applies on SIGHUP (`RELOADABLE`).

Pure data and value checks. Reading them from the TOML file, the `XOD_<SECTION>_<KEY>`
environment variables and `--set section.key=value` is xod/config.py's job; a test checks that
the shipped `xod/config.example.toml` documents every setting of this table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "XOD_"

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")


# -- value checks (each returns the normalized value or raises ValueError with the reason) --------


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPV6]:PORT` → (host, port). Port 0 picks a free port."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"port must be a number, got {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0..65535, got {port}")
    return host, port


def _listen(value: str) -> str:
    parse_listen(value)
    return value


def parse_origins(text: str) -> tuple[str, ...]:
    """`http.allowed_origins`: origins separated by commas or spaces, each `scheme://host[:port]`
    (what a browser sends in `Origin`: no path, no trailing slash)."""
    origins = tuple(o for o in re.split(r"[\s,]+", text.strip()) if o)
    for origin in origins:
        if not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ValueError(f"{origin!r} is not an origin like https://xo.example.net:8443")
    return origins


def _origins(value: str) -> str:
    parse_origins(value)
    return value


def _one_of(choices: Iterable[str]) -> Callable[[str], str]:
    allowed = tuple(choices)

    def check(value: str) -> str:
        if value.lower() not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}; got {value!r}")
        return value.lower()

    return check


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"must be greater than 0; got {value}")
    return value


def _not_negative(value: float) -> float:
    if value < 0:
        raise ValueError(f"must not be negative; got {value}")
    return value


def _readable_file_or_empty(value: str) -> str:
    if value and not os.access(value, os.R_OK):
        raise ValueError(f"cannot read file {value!r}")
    return value


def _nats_urls(value: tuple[str, ...]) -> tuple[str, ...]:
    for url in value:
        if not re.fullmatch(r"(nats|tls)://[^/\s]+", url):
            raise ValueError(f"{url!r} is not a NATS URL like nats://10.0.0.5:4222")
    return value


def _instance_name(value: str) -> str:
    # It ends up in NATS subjects and key-value keys: letters, digits, - and _ only.
    if value and not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise ValueError(f"only letters, digits, - and _; got {value!r}")
    return value


def _replica_count(value: int) -> int:
    if not 1 <= value <= 5:  # JetStream's own bounds
        raise ValueError(f"must be 1 to 5; got {value}")
    return value


def _ipv4(value: str) -> str:
    import ipaddress

    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"must be an IPv4 address; got {value!r}") from None
    return str(address)


@dataclass(frozen=True, slots=True)
class Setting:
    section: str
    key: str
    type: type
    default: Any
    doc: str
    check: Callable[[Any], Any] | None = None

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section.upper()}_{self.key.upper()}"


_MiB = 1024 * 1024

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "http",
        "listen",
        str,
        "0.0.0.0:8080",
        "address and port of the HTTP(S)/WebSocket server",
        _listen,
    ),
    Setting(
        "http",
        "shutdown_timeout",
        float,
        10.0,
        "seconds a graceful stop may take before xod exits anyway",
        _positive,
    ),
    Setting(
        "http",
        "allowed_origins",
        str,
        "",
        "other origins whose pages may use the token cookie (CORS too); xod's own always may",
        _origins,
    ),
    Setting(
        "tls",
        "cert",
        str,
        "",
        "PEM certificate (chain) file; with tls.key, xod serves HTTPS/WSS",
        _readable_file_or_empty,
    ),
    Setting("tls", "key", str, "", "PEM private key file of tls.cert", _readable_file_or_empty),
    Setting(
        "state",
        "dir",
        str,
        None,
        "directory of the state database (users, tokens, servers); demo: a temporary one",
    ),
    Setting("log", "level", str, "info", "debug, info, warning or error", _one_of(LOG_LEVELS)),
    Setting(
        "log",
        "format",
        str,
        "auto",
        "auto (console on a terminal, JSON lines otherwise), json or console",
        _one_of(LOG_FORMATS),
    ),
    Setting(
        "limits",
        "max_clients",
        int,
        10_000,
        "concurrent WebSocket clients; more are refused",
        _positive,
    ),
    Setting(
        "limits",
        "max_incoming_message_bytes",
        int,
        1 * _MiB,
        "largest message (WebSocket frame) a client may send",
        _positive,
    ),
    Setting(
        "limits",
        "client_buffer_bytes",
        int,
        4 * _MiB,
        "output held for a signed-in client before its requests wait (twice that: disconnected)",
        _positive,
    ),
    Setting(
        "limits",
        "anonymous_buffer_bytes",
        int,
        256 * 1024,
        "output held for a client not signed in before its requests wait",
        _positive,
    ),
    Setting(
        "limits",
        "output_buffer_bytes",
        int,
        256 * _MiB,
        "output held for all clients together before lagging and anonymous ones stop being read",
        _positive,
    ),
    Setting(
        "limits",
        "max_calls_in_flight",
        int,
        1024,
        "calls running at once for all clients (anonymous ones: half of them)",
        _positive,
    ),
    Setting(
        "limits",
        "notification_frame_bytes",
        int,
        1 * _MiB,
        "largest `all` notification frame sent to a client (a bigger change batch is split)",
        _positive,
    ),
    Setting(
        "pools",
        "event_timeout",
        float,
        60.0,
        "event.from timeout in seconds (XAPI answers at the latest then)",
        _positive,
    ),
    Setting(
        "pools",
        "connect_timeout",
        float,
        20.0,
        "seconds server.add/enable waits for a pool to connect",
        _positive,
    ),
    Setting(
        "pools",
        "disconnect_grace",
        float,
        300.0,
        "seconds a disconnected pool's objects stay in the cache",
        _not_negative,
    ),
    Setting(
        "admin",
        "email",
        str,
        "admin@admin.net",
        "administrator created on first start if there is no user",
    ),
    Setting(
        "admin",
        "password",
        str,
        "",
        "its password; empty: a random one, written to <state.dir>/initial-admin-password (0600)",
    ),
    Setting(
        "demo", "hosts", int, 3, "hosts of the simulated pool of `xod serve --demo`", _positive
    ),
    Setting("demo", "vms", int, 50, "user VMs of the simulated pool", _not_negative),
    Setting(
        "demo",
        "churn",
        float,
        2.0,
        "object changes per second in the simulated pool (0: none)",
        _not_negative,
    ),
    Setting(
        "demo",
        "address",
        str,
        "127.0.0.2",
        "first simulated host's loopback address (host i: address + i)",
        _ipv4,
    ),
    Setting(
        "cluster",
        "nats",
        tuple,
        (),
        "NATS servers (JetStream) shared by the instances of a cluster; empty: no cluster",
        _nats_urls,
    ),
    Setting(
        "cluster",
        "instance",
        str,
        "",
        "this instance's name in the cluster; empty: <hostname>-<pid>",
        _instance_name,
    ),
    Setting(
        "cluster",
        "lease_seconds",
        float,
        10.0,
        "seconds a pool's owner keeps it without renewing its lease (then another takes over)",
        _positive,
    ),
    Setting(
        "cluster",
        "log_max_age",
        float,
        86400.0,
        "seconds the change log keeps a change (each owner checkpoints its pools 3 times in it)",
        _positive,
    ),
    Setting(
        "cluster",
        "state_replicas",
        int,
        1,
        "copies NATS keeps of the shared state bucket (users, tokens, servers): 3 on 3 servers",
        _replica_count,
    ),
)

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
SETTINGS_BY_ENV: dict[str, Setting] = {s.env: s for s in SETTINGS}

# Old names still accepted, for one release, with a warning in the log: old → current.
# (limits.max_frame_bytes used to mean the notification frame, not an incoming one.)
RENAMED: dict[str, str] = {
    "limits.max_message_bytes": "limits.max_incoming_message_bytes",
    "limits.max_frame_bytes": "limits.notification_frame_bytes",
}
# XOD_LIMITS_MAX_MESSAGE_BYTES → limits.max_message_bytes, …
RENAMED_ENV: dict[str, str] = {ENV_PREFIX + old.replace(".", "_").upper(): old for old in RENAMED}
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(s.section for s in SETTINGS))

# Settings a running daemon applies on SIGHUP; the others need a restart.
RELOADABLE: frozenset[str] = frozenset(
    {"log.level", "log.format", "tls.cert", "tls.key", "http.shutdown_timeout"}
    | {s.name for s in SETTINGS if s.section in ("limits", "pools")}
)
