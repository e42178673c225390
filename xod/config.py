"""xod's settings: defaults < TOML file < `XOD_*` environment variables < command-line flags.

Every setting is declared once in `SETTINGS` (section, key, type, default, check, one-line doc);
the loader, the environment names (`XOD_<SECTION>_<KEY>`), `--set section.key=value` and the test
that the shipped `config.example.toml` documents every setting all derive from that table.
An invalid value anywhere raises `ConfigError` naming the key and where it came from; the daemon
turns that into one line on stderr and exit code 2, before anything is started.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path("/etc/xod/config.toml")
ENV_PREFIX = "XOD_"
CONFIG_ENV = "XOD_CONFIG"  # the config file's path (not a setting)

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")


class ConfigError(ValueError):
    """One invalid setting (or an unreadable file): the message names the key and its source."""

    def __init__(self, key: str | None, message: str, source: str | None = None) -> None:
        self.key = key
        self.source = source
        self.problem = message
        where = key or ""
        if source:
            where = f"{where} (from {source})" if where else source
        super().__init__(f"{where}: {message}" if where else message)


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


def _default_state_dir() -> str:
    # systemd's StateDirectory= exports STATE_DIRECTORY (colon-separated if several).
    from_systemd = os.environ.get("STATE_DIRECTORY")
    return from_systemd.split(":")[0] if from_systemd else "/var/lib/xod"


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


class Section:
    """Attribute access to one section's values (`settings.log.level`)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("settings are read-only")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Section) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        shown = {k: ("***" if k == "password" and v else v) for k, v in self._values.items()}
        return f"Section({shown})"


class Settings:
    """Every setting's final value, plus where the file came from."""

    def __init__(
        self,
        values: Mapping[str, Any],
        path: Path | None,
        explicit: Iterable[str] = (),
        deprecated: Iterable[str] = (),
    ) -> None:
        self.values: dict[str, Any] = dict(values)  # "section.key" → value
        self.path = path
        # Names set by the file, the environment or a flag (not left at their default).
        self.explicit = frozenset(explicit)
        # One line per old setting name used (RENAMED), for the daemon to log once logging
        # is set up.
        self.deprecated: tuple[str, ...] = tuple(deprecated)
        for section in SECTIONS:
            prefix = section + "."
            object.__setattr__(
                self,
                section,
                Section({n[len(prefix) :]: v for n, v in values.items() if n.startswith(prefix)}),
            )

    def __getattr__(self, name: str) -> Section:  # for type checkers: sections are set above
        raise AttributeError(name)

    @property
    def tls_enabled(self) -> bool:
        return bool(self.values["tls.cert"])

    def changed(self, other: Settings) -> list[str]:
        """Names of the settings whose value differs in `other`."""
        return [n for n, v in self.values.items() if other.values.get(n) != v]


# -- coercion ----------------------------------------------------------------------------------


def _from_toml(setting: Setting, value: Any) -> Any:
    expected = setting.type
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ValueError(f"must be {_type_name(expected)}; got {type(value).__name__} {value!r}")
    return value


def _from_text(setting: Setting, text: str) -> Any:
    expected = setting.type
    if expected is str:
        return text
    if expected is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"must be true or false; got {text!r}")
    try:
        return expected(text.strip())
    except ValueError:
        raise ValueError(f"must be {_type_name(expected)}; got {text!r}") from None


def _type_name(expected: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[expected]


def _checked(setting: Setting, value: Any, source: str) -> Any:
    if setting.check is None:
        return value
    try:
        return setting.check(value)
    except ValueError as error:
        raise ConfigError(setting.name, str(error), source) from None


# -- the loader --------------------------------------------------------------------------------


def _current_name(name: str, source: str, deprecated: list[str], given: Iterable[str]) -> str:
    """`name`, or the current name of a renamed setting (noted in `deprecated`); both names
    in one source is an error (which one was meant?)."""
    new = RENAMED.get(name)
    if new is None:
        return name
    if new in given:
        raise ConfigError(name, f"is the old name of {new}, which is also set: keep only {new}",
                          source)  # fmt: skip
    deprecated.append(f"{name} (from {source}) is deprecated: rename it {new}")
    return new


def read_file(path: Path, deprecated: list[str] | None = None) -> dict[str, Any]:
    """The TOML file as {"section.key": value}; unknown sections/keys and bad types raise.
    Old names (RENAMED) are read as the current ones and noted in `deprecated`."""
    deprecated = [] if deprecated is None else deprecated
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(None, "file not found", str(path)) from None
    except PermissionError:
        raise ConfigError(None, "permission denied", str(path)) from None
    except IsADirectoryError:
        raise ConfigError(None, "is a directory, not a file", str(path)) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(None, f"TOML syntax error: {error}", str(path)) from None
    values: dict[str, Any] = {}
    for section, table in document.items():
        if section not in SECTIONS:
            raise ConfigError(section, f"unknown section [{section}]", str(path))
        if not isinstance(table, dict):
            raise ConfigError(section, f"must be a table [{section}]", str(path))
        given = {f"{section}.{key}" for key in table}
        for key, value in table.items():
            name = _current_name(f"{section}.{key}", str(path), deprecated, given)
            setting = SETTINGS_BY_NAME.get(name)
            if setting is None:
                raise ConfigError(f"{section}.{key}", "unknown setting", str(path))
            try:
                coerced = _from_toml(setting, value)
            except ValueError as error:
                raise ConfigError(setting.name, str(error), str(path)) from None
            values[setting.name] = _checked(setting, coerced, str(path))
    return values


def read_environment(
    environ: Mapping[str, str], deprecated: list[str] | None = None
) -> dict[str, Any]:
    """`XOD_<SECTION>_<KEY>` variables; a known section with an unknown key is an error (a typo),
    a variable outside the known sections is someone else's and ignored."""
    deprecated = [] if deprecated is None else deprecated
    values: dict[str, Any] = {}
    given = {SETTINGS_BY_ENV[n].name for n in environ if n in SETTINGS_BY_ENV}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        setting = SETTINGS_BY_ENV.get(name)
        if name in RENAMED_ENV:
            setting = SETTINGS_BY_NAME[_current_name(RENAMED_ENV[name], name, deprecated, given)]
        if setting is None:
            section = name[len(ENV_PREFIX) :].split("_", 1)[0].lower()
            if section in SECTIONS:
                raise ConfigError(None, "unknown setting (no such key in this section)", name)
            continue
        try:
            coerced = _from_text(setting, text)
        except ValueError as error:
            raise ConfigError(setting.name, str(error), name) from None
        values[setting.name] = _checked(setting, coerced, name)
    return values


def read_overrides(
    overrides: Mapping[str, str],
    source: str = "command line",
    deprecated: list[str] | None = None,
) -> dict[str, Any]:
    """Command-line values ("section.key" → text)."""
    deprecated = [] if deprecated is None else deprecated
    values: dict[str, Any] = {}
    for given_name, text in overrides.items():
        name = _current_name(given_name, source, deprecated, overrides)
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None:
            raise ConfigError(name, "unknown setting", source)
        try:
            coerced = _from_text(setting, text)
        except ValueError as error:
            raise ConfigError(name, str(error), source) from None
        values[name] = _checked(setting, coerced, source)
    return values


def config_path(explicit: str | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The config file to read and whether it must exist (named by flag or XOD_CONFIG)."""
    if explicit:
        return Path(explicit), True
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]), True
    return DEFAULT_CONFIG_PATH, False


def load(
    *,
    path: Path | None,
    required: bool = True,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults, the file (if any), the environment and the overrides, then cross-check.

    `defaults` replaces built-in defaults (the demo's listen address and state dir)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    values["state.dir"] = _default_state_dir()
    values.update(defaults or {})
    used_path: Path | None = None
    explicit: dict[str, Any] = {}
    deprecated: list[str] = []
    if path is not None and (required or path.exists()):
        explicit.update(read_file(path, deprecated))
        used_path = path
    explicit.update(read_environment(environ, deprecated))
    explicit.update(read_overrides(overrides or {}, deprecated=deprecated))
    values.update(explicit)
    _cross_check(values)
    return Settings(values, used_path, explicit, deprecated)


def _cross_check(values: Mapping[str, Any]) -> None:
    cert, key = values["tls.cert"], values["tls.key"]
    if bool(cert) != bool(key):
        missing = "tls.key" if cert else "tls.cert"
        raise ConfigError(missing, "tls.cert and tls.key must be set together")
