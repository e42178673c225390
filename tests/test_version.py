"""One version, pyproject.toml's: the package, the daemon's API and both command lines say it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import xod
from tests.api.harness import connect, running_xod

ROOT = Path(__file__).resolve().parent.parent


def declared_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_package_and_command_lines_report_pyprojects_version() -> None:
    version = declared_version()
    assert xod.__version__ == version
    for name in ("xod", "xod-cli"):  # the installed entry points, beside this Python
        shown = subprocess.run(
            [str(Path(sys.executable).parent / name), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert shown.stdout.strip() == f"{name} {version}"


async def test_the_api_reports_pyprojects_version(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as client:
        assert await client.call("system.getServerVersion") == declared_version()
