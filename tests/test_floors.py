"""`.ci/floors.py`: the constraints that pin every dependency to its declared floor (the CI's
second test run installs exactly those)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "floors.py"


def load_floors():
    spec = importlib.util.spec_from_file_location("ci_floors", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.floors


def test_every_requirement_is_pinned_to_its_floor() -> None:
    pyproject = {
        "build-system": {"requires": ["setuptools>=77.0.1", "wheel"]},
        "project": {
            "dependencies": ["aiohttp>=3.10.0,<4", "prometheus_client >= 0.20.0"],
            "optional-dependencies": {
                "test": ["XenAPI>=24.0.0", "uvloop>=0.19; sys_platform != 'win32'"]
            },
        },
    }
    assert load_floors()(pyproject) == [
        "aiohttp==3.10.0",
        "prometheus-client==0.20.0",
        "setuptools==77.0.1",
        "uvloop==0.19; sys_platform != 'win32'",
        "xenapi==24.0.0",
    ]


def test_a_requirement_without_a_floor_is_refused() -> None:
    pyproject = {"build-system": {"requires": []}, "project": {"dependencies": ["orjson<4"]}}
    with pytest.raises(SystemExit, match="declares no floor"):
        load_floors()(pyproject)


def test_the_projects_own_requirements_all_have_floors() -> None:
    printed = subprocess.run(
        [sys.executable, str(SCRIPT), str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"]]
    for group in project["optional-dependencies"].values():
        requirements += group
    names = {canonicalize_name(Requirement(r).name) for r in requirements}
    # One pin per package, setuptools (the build's) included.
    assert sorted(p.partition("==")[0] for p in printed) == sorted(names | {"setuptools"})
    assert "setuptools==77.0.1" in printed
