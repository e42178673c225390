"""list-commands: `system.getMethodsInfo`, filtered by globs, printed as
xo-cli prints it."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from typing import Any

from xod.cli.output import print_json, write
from xod.cli.session import registered_connection

_BRACES = re.compile(r"\{([^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """`{user,group}.*` → [`user.*`, `group.*`] (micromatch's brace sets, which fnmatch lacks)."""
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    expanded: list[str] = []
    for option in match.group(1).split(","):
        expanded.extend(expand_braces(head + option + tail))
    return expanded


def matcher(globs: Iterable[str]) -> Callable[[str], bool]:
    patterns = [p for glob in globs for p in expand_braces(glob)]
    if not patterns:
        return lambda name: True
    regex = re.compile("|".join(fnmatch.translate(p) for p in patterns))
    return lambda name: regex.match(name) is not None


def param_type(info: dict[str, Any]) -> str:
    declared = info.get("type")
    if isinstance(declared, list):
        return "|".join(str(t) for t in declared)
    return str(declared) if declared else "unknown type"


def signature(name: str, info: dict[str, Any]) -> str:
    """`vm.stop id=<string> [force=<boolean>]`: bracketed when optional or defaulted."""
    parts = [name]
    params = info.get("params") or {}
    for param, spec in params.items():
        spec = spec if isinstance(spec, dict) else {}
        text = f"{param}=<{param_type(spec)}>"
        if spec.get("optional") or "default" in spec:
            text = f"[{text}]"
        parts.append(text)
    return " ".join(parts)


def format_methods(methods: dict[str, Any]) -> str:
    lines: list[str] = []
    for name in sorted(methods):
        info = methods[name] if isinstance(methods[name], dict) else {}
        lines.append(signature(name, info))
        if info.get("description"):
            lines.append(f"  {info['description']}")
    return "\n".join(lines) + ("\n" if lines else "")


async def list_commands(globs: list[str], as_json: bool) -> int:
    async with registered_connection() as connection:
        methods = await connection.call("system.getMethodsInfo")
    wanted = matcher(globs)
    selected = {name: info for name, info in methods.items() if wanted(name)}
    if as_json:
        print_json(selected)
    else:
        write(format_methods(selected).encode())
    return 0
