"""The README's first commands, verbatim, in a fresh copy of the repository and a fresh virtual
environment: install xod, run the demo, see live objects. Slow (it installs the package):
marked `readme`, so `pytest -m "not readme"` leaves it out."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import orjson
import pytest
import websockets

from tests.daemon.helpers import REPO

_IGNORED = shutil.ignore_patterns(
    ".venv", ".git", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis",
    "*.egg-info", "build", "dist",
)  # fmt: skip


def readme_commands(text: str) -> tuple[str, str | None]:
    """The shell line that runs the demo, and the first `xod-cli` line after it (if any)."""
    blocks = re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    demo = next((i for i, line in enumerate(lines) if "xod serve --demo" in line), None)
    assert demo is not None, "the README has no shell line running `xod serve --demo`"
    cli = next((line for line in lines[demo + 1 :] if "xod-cli" in line), None)
    return lines[demo], cli


async def check_demo(url: str, email: str, password: str) -> None:
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 60
        while True:
            async with http.get(f"{url}/readyz") as response:
                if response.status == 200:
                    break
            assert time.monotonic() < deadline, "the demo pool never synced"
            await asyncio.sleep(0.2)
    async with websockets.connect(url.replace("http", "ws", 1) + "/api/") as ws:
        calls = [
            ("session.signInWithPassword", {"email": email, "password": password}),
            ("xo.getAllObjects", {"filter": "type:VM"}),
        ]
        for request_id, (method, params) in enumerate(calls):
            await ws.send(
                orjson.dumps(
                    {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
                )
            )
            reply = orjson.loads(await ws.recv())
            assert "result" in reply, reply
        assert len(reply["result"]) >= 10


def follow_readme(workdir: Path, install_timeout: float = 900) -> None:
    serve, cli = readme_commands((workdir / "README.md").read_text())
    output = workdir / "serve.out"
    with output.open("wb") as out:
        # Its own session: the whole command line (venv, pip, then xod) is one process group.
        process = subprocess.Popen(
            ["bash", "-c", serve], cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith(("XOD_", "VIRTUAL_ENV"))},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + install_timeout
        pattern = r"URL:\s+(\S+)\n(?:.*\n)*?\s+user:\s+(\S+)\n\s+password:\s+(\S+)"
        while not (match := re.search(pattern, output.read_text(errors="replace"))):
            assert process.poll() is None, output.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, "the README's demo never printed its URL"
            time.sleep(0.5)
        url, email, password = match.groups()
        asyncio.run(check_demo(url, email, password))
        if cli is not None:
            # The README names the default URL; the demo may have taken another free port.
            cli = cli.replace("http://127.0.0.1:8080", url)
            env = {**os.environ, "XDG_CONFIG_HOME": str(workdir / "config")}
            result = subprocess.run(
                ["bash", "-c", cli], cwd=workdir, input=password + "\n", capture_output=True,
                text=True, timeout=120, env=env,
            )  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr
            registered = orjson.loads((workdir / "config/xod-cli/config.json").read_bytes())
            assert registered["server"].startswith(url) and registered["token"]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.readme
@pytest.mark.timeout(1200)
def test_readme_demo_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    workdir = tmp_path / "xod"
    shutil.copytree(REPO, workdir, ignore=_IGNORED)
    follow_readme(workdir)
