"""xod.filters is pure (no I/O layer, no event loop), and the CLI filters without the API layer:
checked in a fresh interpreter, where sys.modules shows everything an import pulled in."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import importlib, json, pkgutil, sys
importlib.import_module({package!r})
{extra}
print(json.dumps(sorted(sys.modules)))
"""


def imported_by(package: str, extra: str = "") -> set[str]:
    code = PROBE.format(package=package, extra=extra)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(result.stdout))


def of_layers(modules: set[str], *layers: str) -> set[str]:
    return {m for m in modules if any(m == layer or m.startswith(layer + ".") for layer in layers)}


def test_filters_import_no_io_layer_nor_event_loop() -> None:
    modules = imported_by("xod.filters", "from xod.filters import parse; parse('/a/ b*')")
    assert "xod.filters.parser" in modules
    assert of_layers(modules, "xod.api", "xod.server", "xod.cache", "aiohttp", "asyncio") == set()


def test_the_cli_does_not_import_the_api_layer() -> None:
    every_cli_module = (
        "import xod.cli\n"
        "for info in pkgutil.iter_modules(xod.cli.__path__):\n"
        "    if info.name != '__main__':\n"
        "        importlib.import_module('xod.cli.' + info.name)\n"
        "from xod.filters import compile_filter\n"
    )
    modules = imported_by("xod.cli", every_cli_module)
    assert {"xod.cli.watch", "xod.cli.objects"} <= modules
    assert of_layers(modules, "xod.api", "xod.server", "xod.cache") == set()
