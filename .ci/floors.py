"""Print a pip constraints file that pins every declared dependency to its floor.

Reads pyproject.toml: the build requirements, the runtime dependencies and every optional
group. Each must say `name>=floor` (a requirement without a floor is an error: its floor would
be whatever pip finds first); `name==floor` lines come out, so a venv built with `-c` proves
the floors true. Requirements without a version (the build's `wheel`) are left to pip.

Usage: python .ci/floors.py [pyproject.toml] > constraints.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# name, optional [extras], then the version clauses, then an optional ; marker.
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)(;.*)?$")
FLOOR = re.compile(r">=\s*([^,\s]+)")


def floors(pyproject: dict) -> list[str]:
    project = pyproject["project"]
    requirements = list(pyproject["build-system"]["requires"]) + list(project["dependencies"])
    for group in project.get("optional-dependencies", {}).values():
        requirements += group
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"cannot read the requirement {requirement!r}")
        name, clauses, marker = match.groups()
        if not clauses.strip():
            continue
        floor = FLOOR.search(clauses)
        if floor is None:
            raise SystemExit(f"{requirement!r} declares no floor (name>=version)")
        key = re.sub(r"[-_.]+", "-", name).lower()
        pins[key] = f"{key}=={floor.group(1)}{marker or ''}"
    return [pins[key] for key in sorted(pins)]


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(floors(tomllib.loads(path.read_text()))))


if __name__ == "__main__":
    main()
