"""An invalid configuration: one clear line naming the key, exit code 2, nothing started."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.daemon.helpers import run_xod


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CASES = [
    # (file content, environment, extra flags, the key the message must name, a phrase)
    ('[log]\nlevel = "loud"\n', {}, [], "log.level", "must be one of debug, info, warning, error"),
    ('[limits]\nmax_clients = "many"\n', {}, [], "limits.max_clients", "must be an integer"),
    ('[http]\nlisen = "127.0.0.1:1"\n', {}, [], "http.lisen", "unknown setting"),
    ("[http\n", {}, [], "config.toml", "TOML syntax error"),
    ("", {"XOD_POOLS_EVENT_TIMOUT": "1"}, [], "XOD_POOLS_EVENT_TIMOUT", None),
    (
        "",
        {"XOD_POOLS_EVENT_TIMEOUT": "-1"},
        [],
        "pools.event_timeout (from XOD_POOLS_EVENT_TIMEOUT)",
        "greater than 0",
    ),
    ("", {}, ["--listen", "127.0.0.1:99999"], "http.listen (from command line)", "0..65535"),
    ("", {}, ["--tls-cert", "/nonexistent/cert.pem"], "tls.cert", "cannot read file"),
    ("", {}, ["--set", "tls.cert=/etc/hostname"], "tls.key", "set together"),
]


@pytest.mark.parametrize(("content", "env", "flags", "key", "phrase"), CASES)
def test_invalid_configuration(tmp_path: Path, content, env, flags, key, phrase) -> None:
    config = tmp_path / "config.toml"
    config.write_text(content)
    state_dir = tmp_path / "state"
    port = free_port()
    result = run_xod(
        [
            "--config",
            str(config),
            "--state-dir",
            str(state_dir),
            "--listen",
            f"127.0.0.1:{port}",
            *flags,
        ],
        tmp_path,
        env,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("xod: invalid configuration: ")
    assert key in lines[0]
    if phrase:
        assert phrase in lines[0]
    assert result.stdout == ""
    assert not state_dir.exists()  # nothing started, nothing created


def test_unusable_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    result = run_xod(
        ["--state-dir", str(tmp_path / "state"), "--tls-cert", str(junk), "--tls-key", str(junk)],
        tmp_path,
    )
    assert result.returncode == 2
    assert "tls.cert" in result.stderr and "cannot load the certificate and key" in result.stderr
    assert not (tmp_path / "state").exists()


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    result = run_xod(["--demo"], tmp_path, {"XOD_CONFIG": str(tmp_path / "missing.toml")})
    assert result.returncode == 2
    assert "missing.toml: file not found" in result.stderr


def test_a_port_in_use_is_a_startup_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_xod(
            ["--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "state")], tmp_path
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("xod: cannot start: ")
    assert "address already in use" in result.stderr.lower()
