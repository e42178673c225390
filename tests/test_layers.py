"""The layering rule: which part of xod may import which (ARCHITECTURE.md has the same table).

Records flow up (xapi → cache → api → server) and commands flow down; nothing imports upwards,
and the pure parts (filters, store, sim, leaf utilities) import no other part. Every import
statement of every module counts, type-only ones included.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "xod"
EVERYTHING = frozenset({"*"})

# Leaf utilities: pure, importing nothing from xod; any part may use them. "xod": the package
# itself (`__version__`); "acl": XO's permission model (roles, the inheritance resolver).
LEAVES = frozenset({"xod", "backoff", "formats", "acl"})

# part of xod → the other parts it may import (besides itself and the leaves).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "xapi": frozenset(),
    "cache": frozenset({"xapi"}),
    "filters": frozenset(),
    "store": frozenset(),
    "sim": frozenset(),
    "metrics": frozenset({"cache", "xapi"}),
    "api": frozenset({"cache", "xapi", "filters", "store", "metrics"}),
    "server": frozenset({"api", "cache", "xapi", "filters", "store", "metrics", "runtime"}),
    "cluster": frozenset({"api", "cache", "xapi", "store", "metrics"}),
    "cli": frozenset({"filters"}),
    "runtime": frozenset(),
    "config": frozenset({"settings"}),
    "settings": frozenset(),
    "logs": frozenset(),
    "notify": frozenset(),
    "backoff": frozenset(),
    "formats": frozenset(),
    "acl": frozenset(),
    "xod": frozenset(),
    "lifecycle": EVERYTHING,
    "daemon": EVERYTHING,
    "__main__": frozenset({"daemon"}),
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    """`xod.cache.store` → "cache", `xod.daemon` → "daemon", `xod` → "xod"."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "xod"


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) of every xod module `path` imports, relative imports resolved and
    `from xod import name` read as the submodule when there is one."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                relative = submodule.split(".")[1:]
                is_module = (root.joinpath(*relative).with_suffix(".py")).is_file() or (
                    root.joinpath(*relative) / "__init__.py"
                ).is_file()
                found.append((node.lineno, submodule if is_module else origin))
    return [(line, module) for line, module in found if module.split(".")[0] == "xod"]


def violations(root: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        source = part_of(module_name(path, root))
        allowed = MAY_IMPORT.get(source)
        if allowed is None:
            problems.append(f"{path.relative_to(root.parent)}: '{source}' is not in MAY_IMPORT")
            continue
        for line, module in imported_modules(path, root):
            target = part_of(module)
            if target == source or target in LEAVES or allowed == EVERYTHING:
                continue
            if target not in allowed:
                rule = ", ".join(sorted(allowed)) or "nothing"
                problems.append(
                    f"{path.relative_to(root.parent)}:{line}: imports {module}"
                    f" ({source} may import {rule})"
                )
    return problems


def test_every_import_follows_the_layering_rule() -> None:
    assert violations() == []


def test_leaves_import_nothing_from_xod() -> None:
    assert all(MAY_IMPORT[leaf] == frozenset() for leaf in LEAVES)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    root = tmp_path / "xod"
    (root / "cache").mkdir(parents=True)
    (root / "api").mkdir()
    for package in (root, root / "cache", root / "api"):
        (package / "__init__.py").write_text("")
    (root / "api" / "dispatch.py").write_text("")
    (root / "cache" / "store.py").write_text(
        "from xod import __version__, backoff\nfrom ..api import dispatch\n"
    )
    assert violations(root) == [
        "xod/cache/store.py:2: imports xod.api.dispatch (cache may import xapi)"
    ]


# aiohttp's private attributes: one module adapts to them (and its test checks it on a real
# socket), so an aiohttp upgrade that moves them breaks one place, loudly.
AIOHTTP_EDGE = ("xod/server/aiohttp_edge.py", "tests/server/test_aiohttp_edge.py")
AIOHTTP_PRIVATE = re.compile(
    r"\._paused\b|_drain_helper|_max_msg_size|_payload_writer|\._req\b|site\._server\b"
)


def private_aiohttp_uses(repo: Path = PACKAGE.parent) -> list[str]:
    this_file = Path(__file__).resolve()
    uses = []
    for tree in ("xod", "tests", "bench"):
        for path in sorted((repo / tree).rglob("*.py")):
            name = path.relative_to(repo).as_posix()
            if name in AIOHTTP_EDGE or path.resolve() == this_file or "node_modules" in name:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if AIOHTTP_PRIVATE.search(line):
                    uses.append(f"{name}:{number}: {line.strip()}")
    return uses


def test_only_the_edge_touches_aiohttp_internals() -> None:
    assert private_aiohttp_uses() == []


def test_the_internals_check_sees_a_private_attribute(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "proxy.py").write_text("port = site._server.sockets[0]\n")
    assert private_aiohttp_uses(tmp_path) == ["tests/proxy.py:1: port = site._server.sockets[0]"]


# A module is about one thing and reads in one sitting: over LONG_MODULE_LINES lines, its
# docstring says why in a paragraph starting with LONG_MODULE_REASON (ARCHITECTURE.md).
LONG_MODULE_LINES = 450
LONG_MODULE_REASON = "Why this module is long:"


def long_modules_without_a_reason(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text()
        lines = source.count("\n")
        docstring = ast.get_docstring(ast.parse(source)) or ""
        name = path.relative_to(root.parent).as_posix()
        if lines > LONG_MODULE_LINES and LONG_MODULE_REASON not in docstring:
            found.append(f"{name}: {lines} lines")
    return found


def test_long_modules_say_why() -> None:
    assert long_modules_without_a_reason() == []


def test_the_length_check_sees_a_long_module(tmp_path: Path) -> None:
    (tmp_path / "xod").mkdir()
    filler = "x = 1\n" * LONG_MODULE_LINES
    (tmp_path / "xod" / "short.py").write_text('"""One thing."""\n')
    (tmp_path / "xod" / "long.py").write_text('"""Many things."""\n' + filler)
    reason = f'"""Many things.\n\n{LONG_MODULE_REASON} a table.\n"""\n'
    (tmp_path / "xod" / "explained.py").write_text(reason + filler)
    assert long_modules_without_a_reason(tmp_path / "xod") == [
        f"xod/long.py: {LONG_MODULE_LINES + 1} lines"
    ]
