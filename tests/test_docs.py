"""The documents stay true: ARCHITECTURE.md, README.md, docs/protocol.md and CHANGELOG.md name
files, settings and benchmarks that exist, ARCHITECTURE.md's layering table is the one
tests/test_layers.py enforces, and nothing in the repository cites documents that are not in it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.test_layers import EVERYTHING, LEAVES, MAY_IMPORT
from xod.settings import RENAMED, SETTINGS

REPO = Path(__file__).resolve().parent.parent
DOCS = ("ARCHITECTURE.md", "README.md", "docs/protocol.md", "docs/cluster.md", "CHANGELOG.md")
# The documents the project was written from live outside the repository: a comment citing
# them (by file name, by directory, or by their `§` section marks) leaves a reader nowhere.
OUTSIDE_DOCUMENTS = re.compile(
    r"xo-jsonrpc|xo-rest\.md|xo-commands|xo-acl\.md|xapi-protocol|xapi-http\.md|"
    r"datamodel-fields|\bperformance\.md|\bperf\.md|\bdesign\.md|\.\./shared|shared/reference|"
    r"\breference/|seeds/\d|§\s*\d"
)
CHECKED_TREES = ("xod/", "tests/", "bench/", "docs/", ".ci/", "schemas/", "systemd/")


def tracked_files() -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    )
    return listing.stdout.splitlines()


def test_nothing_cites_documents_outside_the_repository() -> None:
    this_file = Path(__file__).relative_to(REPO).as_posix()  # it holds the patterns
    checked = [
        name
        for name in tracked_files()
        if name != this_file
        and (name.startswith(CHECKED_TREES) or "/" not in name)
        and (REPO / name).is_file()
    ]
    assert "xod/server/ws.py" in checked and "README.md" in checked
    citations = [
        f"{name}:{number}: {line.strip()}"
        for name in checked
        for number, line in enumerate(
            (REPO / name).read_text(encoding="utf-8", errors="replace").splitlines(), 1
        )
        if OUTSIDE_DOCUMENTS.search(line)
    ]
    assert citations == []


@pytest.mark.parametrize("line", ["(xo-jsonrpc §5.1)", "shared/reference/xapi-protocol.md"])
def test_the_citation_check_sees_a_citation(line: str) -> None:
    assert OUTSIDE_DOCUMENTS.search(line)


def paths_named(text: str) -> set[str]:
    """Repository paths written in a document: `xod/…`, `tests/…`, `bench/…` and the like."""
    found = re.findall(r"(?<![\w/.])((?:xod|tests|bench|docs|schemas|systemd|\.ci)/[\w./-]*)", text)
    return {path.rstrip(".") for path in found if "<" not in path}


@pytest.mark.parametrize("document", DOCS)
def test_every_path_a_document_names_exists(document: str) -> None:
    named = paths_named((REPO / document).read_text())
    if document == "CHANGELOG.md":  # history: what a file was before it moved stays named
        named -= {"xod/cache/objects.py", "xod/api/context.py"}
    assert named
    assert sorted(path for path in named if not (REPO / path).exists()) == []


@pytest.mark.parametrize("document", DOCS)
def test_every_setting_a_document_names_exists(document: str) -> None:
    sections = {setting.section for setting in SETTINGS}
    known = {setting.name for setting in SETTINGS} | set(RENAMED)
    named = {
        name
        for name in re.findall(r"`([a-z_]+\.[a-z_]+)`", (REPO / document).read_text())
        if name.split(".")[0] in sections and name.split(".")[1] not in {"py", "md", "toml"}
    }
    assert sorted(named - known) == []


def architecture_table() -> dict[str, frozenset[str]]:
    """ARCHITECTURE.md's package table: part of xod → what it may import."""
    table: dict[str, frozenset[str]] = {}
    for line in (REPO / "ARCHITECTURE.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`xod/"):
            continue
        rule = cells[2]
        allowed = EVERYTHING if rule == "anything" else frozenset(re.findall(r"`(\w+)`", rule))
        for path in re.findall(r"`xod/(\w+)(?:/|\.py)`", cells[0]):
            table[path] = allowed
    return table


def test_the_architecture_table_is_the_enforced_one() -> None:
    documented = architecture_table()
    enforced = {part: rule for part, rule in MAY_IMPORT.items() if part not in {"xod", "__main__"}}
    enforced = {part: rule for part, rule in enforced.items() if part not in LEAVES}
    assert documented == enforced


def test_the_readme_lists_every_benchmark_and_package() -> None:
    readme = (REPO / "README.md").read_text()
    benches = {path.name for path in (REPO / "bench").glob("*.py")}
    packages = {path.parent.name for path in (REPO / "xod").glob("*/__init__.py")}
    assert sorted(b for b in benches if f"bench/{b}" not in readme) == []
    assert sorted(p for p in packages if f"`xod/{p}`" not in readme) == []
