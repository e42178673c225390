"""xod's settings: defaults < TOML file < `XOD_*` environment variables < command-line flags.

Every setting is declared once in `SETTINGS` (xod/settings.py); the loader here, the environment
names (`XOD_<SECTION>_<KEY>`) and `--set section.key=value` all derive from that table.
An invalid value anywhere raises `ConfigError` naming the key and where it came from; the daemon
turns that into one line on stderr and exit code 2, before anything is started.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from xod.settings import (
    ENV_PREFIX,
    RENAMED,
    RENAMED_ENV,
    SECTIONS,
    SETTINGS,
    SETTINGS_BY_ENV,
    SETTINGS_BY_NAME,
    Setting,
)

DEFAULT_CONFIG_PATH = Path("/etc/xod/config.toml")
CONFIG_ENV = "XOD_CONFIG"  # the config file's path (not a setting)


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


def _default_state_dir() -> str:
    # systemd's StateDirectory= exports STATE_DIRECTORY (colon-separated if several).
    from_systemd = os.environ.get("STATE_DIRECTORY")
    return from_systemd.split(":")[0] if from_systemd else "/var/lib/xod"


# -- coercion ----------------------------------------------------------------------------------


def _from_toml(setting: Setting, value: Any) -> Any:
    expected = setting.type
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is tuple and isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ValueError(f"must be a list of strings; got {value!r}")
        value = tuple(value)
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ValueError(f"must be {_type_name(expected)}; got {type(value).__name__} {value!r}")
    return value


def _from_text(setting: Setting, text: str) -> Any:
    expected = setting.type
    if expected is str:
        return text
    if expected is tuple:  # a list: items separated by commas or spaces
        return tuple(item for item in re.split(r"[\s,]+", text.strip()) if item)
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
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        tuple: "a list of strings",
    }[expected]


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
