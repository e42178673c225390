"""Every method on objects declares the permission it needs on each of them, and
docs/protocol.md says exactly what the code declares."""

from __future__ import annotations

import re
from pathlib import Path

from xod.api.commands import ACTIONS
from xod.api.methods import build_registry
from xod.api.registry import SIGNED_IN
from xod.api.resolve import RESOLVES

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
SECTION = "### Who may act: object permissions of commands"
# Actions whose checks depend on their params' values (vm.create: the template's pool or a
# resource set), made in their handlers.
CHECKED_IN_HANDLER = {"vm.create"}


def documented() -> dict[str, list[tuple[str, str]]]:
    text = PROTOCOL.read_text()
    table = text[text.index(SECTION) :].split("\n\n")[2]
    rows: dict[str, list[tuple[str, str]]] = {}
    for line in table.splitlines()[2:]:
        _, methods, params, _ = line.split("|")
        entries = re.findall(r"`(\w+)`(?: \(any type\))?: (\w+|—)", params)
        for method in re.findall(r"`([\w.]+)`", methods):
            rows[method] = [(name, "" if level == "—" else level) for name, level in entries]
    return rows


def test_every_action_declares_its_objects() -> None:
    registry = build_registry()
    assert ACTIONS - set(RESOLVES) == CHECKED_IN_HANDLER
    for name in ACTIONS | set(RESOLVES):
        method = registry.get(name)
        assert method is not None and method.permission == SIGNED_IN, name
        params = set(method.params or {})
        for entry in RESOLVES.get(name, ()):
            assert entry.param in params, (name, entry.param)


def test_the_protocol_documents_the_declarations() -> None:
    build_registry()
    declared = {
        name: [(entry.param, entry.permission) for entry in entries]
        for name, entries in RESOLVES.items()
    }
    assert documented() == declared
