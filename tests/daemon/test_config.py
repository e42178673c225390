"""The settings model: precedence, the shipped example, error messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xod import config
from xod.config import ConfigError
from xod.settings import SETTINGS, parse_listen

EXAMPLE = Path(config.__file__).with_name("config.example.toml")


def test_precedence_defaults_file_environment_flags(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[log]\nlevel = "warning"\nformat = "json"\n[limits]\nmax_clients = 7\n')
    environ = {"XOD_LOG_LEVEL": "error", "XOD_LIMITS_MAX_CLIENTS": "8", "OTHER": "x"}
    settings = config.load(
        path=path, environ=environ, overrides={"log.level": "debug", "state.dir": "/srv/xod"}
    )
    assert settings.log.level == "debug"  # flag > environment > file
    assert settings.limits.max_clients == 8  # environment > file
    assert settings.log.format == "json"  # file > default
    assert settings.http.listen == "0.0.0.0:8080"  # default
    assert settings.state.dir == "/srv/xod"
    assert settings.explicit == {"log.level", "log.format", "limits.max_clients", "state.dir"}


def test_default_config_file_may_be_absent_but_a_named_one_may_not(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    assert config.load(path=missing, required=False, environ={}).path is None
    with pytest.raises(ConfigError, match=r"absent\.toml: file not found"):
        config.load(path=missing, required=True, environ={})


def test_state_dir_follows_systemd_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/xod")
    assert config.load(path=None, environ={}).state.dir == "/var/lib/xod"


def test_example_documents_every_setting_at_its_default(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    section = None
    documented = set()
    uncommented = []
    for line in text.splitlines():
        if match := re.match(r"^\[(\w+)\]$", line):
            section = match.group(1)
        elif match := re.match(r"^# (\w+) = ", line):
            documented.add(f"{section}.{match.group(1)}")
            line = line[2:]
        uncommented.append(line)
    assert documented == {s.name for s in SETTINGS}
    path = tmp_path / "all.toml"
    path.write_text("\n".join(uncommented))
    loaded = config.load(path=path, environ={})
    defaults = config.load(path=None, environ={})
    assert loaded.values == defaults.values | {"state.dir": "/var/lib/xod"}


def test_errors_name_the_key_and_the_source(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[http]\nshutdown_timeout = true\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path=path, environ={})
    assert (
        str(caught.value) == f"http.shutdown_timeout (from {path}): must be a number; got bool True"
    )
    with pytest.raises(ConfigError, match=r"^XOD_LOG_LEVLE: unknown setting"):
        config.load(path=None, environ={"XOD_LOG_LEVLE": "debug"})
    with pytest.raises(ConfigError, match=r"^demo\.address \(from command line\): must be an IPv4"):
        config.load(path=None, environ={}, overrides={"demo.address": "localhost"})


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:8443") == ("::1", 8443)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen("8080")


def test_renamed_limits_still_read_under_their_old_names(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[limits]\nmax_message_bytes = 2048\nmax_frame_bytes = 4096\n")
    settings = config.load(path=path, environ={})
    assert settings.limits.max_incoming_message_bytes == 2048
    assert settings.limits.notification_frame_bytes == 4096
    assert settings.explicit == {
        "limits.max_incoming_message_bytes",
        "limits.notification_frame_bytes",
    }
    assert settings.deprecated == (
        f"limits.max_message_bytes (from {path}) is deprecated: rename it"
        " limits.max_incoming_message_bytes",
        f"limits.max_frame_bytes (from {path}) is deprecated: rename it"
        " limits.notification_frame_bytes",
    )
    # The environment and --set too.
    settings = config.load(
        path=None,
        environ={"XOD_LIMITS_MAX_MESSAGE_BYTES": "3000"},
        overrides={"limits.max_frame_bytes": "5000"},
    )
    assert settings.limits.max_incoming_message_bytes == 3000
    assert settings.limits.notification_frame_bytes == 5000
    assert [line.split(" (from ")[1].split(")")[0] for line in settings.deprecated] == [
        "XOD_LIMITS_MAX_MESSAGE_BYTES",
        "command line",
    ]
    # The current names carry no note.
    assert config.load(path=None, environ={}).deprecated == ()


def test_an_old_and_a_new_name_together_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[limits]\nmax_frame_bytes = 4096\nnotification_frame_bytes = 8192\n")
    with pytest.raises(ConfigError, match=r"keep only limits\.notification_frame_bytes"):
        config.load(path=path, environ={})
    with pytest.raises(ConfigError, match=r"keep only limits\.max_incoming_message_bytes"):
        config.load(
            path=None,
            environ={
                "XOD_LIMITS_MAX_MESSAGE_BYTES": "1",
                "XOD_LIMITS_MAX_INCOMING_MESSAGE_BYTES": "2",
            },
        )
