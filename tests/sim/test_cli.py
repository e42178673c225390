"""`python -m xod.sim` as a user runs it: a subprocess that prints where it listens, serves
XenAPI, and stops cleanly on SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import orjson
import XenAPI

REPO = Path(__file__).resolve().parents[2]


async def start_cli(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xod.sim", *args,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert line, (await process.stderr.read()).decode() if process.stderr else "no output"
    return line.decode().rstrip("\n")


def login_and_count_vms(url: str, username: str, password: str) -> int:
    session = XenAPI.Session(url)
    session.xenapi.login_with_password(username, password)
    try:
        return sum(
            1
            for record in session.xenapi.VM.get_all_records().values()
            if not record["is_a_template"]
            and not record["is_control_domain"]
            and not record["is_a_snapshot"]
        )
    finally:
        session.xenapi.session.logout()


async def test_json_output_then_sigterm() -> None:
    process = await start_cli("--json", "--hosts", "2", "--vms", "5", "--listen", "127.0.0.1:0")
    try:
        info = orjson.loads(await read_line(process))
        assert [h["master"] for h in info["hosts"]] == [True, False]
        assert info["master_url"] == info["hosts"][0]["url"]
        assert info["hosts"][1]["url"] == f"http://127.0.0.2:{info['port']}"
        vms = await asyncio.to_thread(
            login_and_count_vms, info["master_url"], info["username"], info["password"]
        )
        assert vms == 5
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0


async def test_text_output_with_unix_socket_then_sigint(tmp_path: Path) -> None:
    socket_path = tmp_path / "sim.sock"
    process = await start_cli(
        "--hosts", "2", "--vms", "3", "--listen", "127.0.0.1:0", "--unix", str(socket_path),
        "--password", "s3cret",
    )  # fmt: skip
    try:
        lines = [await read_line(process) for _ in range(4)]
        master_line, slave_line, unix_line, credentials = lines
        assert master_line.startswith("host ") and master_line.endswith(" master")
        assert slave_line.startswith("host ") and "127.0.0.2:" in slave_line
        assert unix_line == f"unix {socket_path}"
        assert credentials == "credentials root s3cret"
        url = next(word for word in master_line.split() if word.startswith("http://"))
        assert await asyncio.to_thread(login_and_count_vms, url, "root", "s3cret") == 3
        assert socket_path.exists()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    assert not socket_path.exists()
