"""Running one of tests/js's node scripts against xod: its report is the last line it prints,
a JSON object."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

JS = Path(__file__).resolve().parents[1] / "js"


async def run_node_script(script: str, *args: str, timeout: float = 60) -> Any:
    """`node tests/js/<script> args…`, which must exit 0 within `timeout` seconds: its report."""
    process = await asyncio.create_subprocess_exec(
        "node",
        str(JS / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"node {script} did not end within {timeout:g} s") from None
    assert process.returncode == 0, stderr.decode()
    return orjson.loads(stdout.splitlines()[-1])
