"""Under a pseudo-terminal an action draws its progress bar from its task's progress; with
--no-progress (or off a terminal, see test_commands) nothing but the result is written."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import struct
import termios
from pathlib import Path

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.cli.helpers import CLI, Lab, lab

RUN_TIMEOUT = 20.0


async def run_in_pty(env: Lab, *args: str, answers: dict[bytes, bytes] | None = None):
    """Run xod-cli with stdin/stdout/stderr on a pty (80 columns); (exit code, what the
    terminal showed). `answers`: typed in once the prompt shows, as a person would."""
    pending = dict(answers or {})
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, env=env.env(TERM="xterm"), stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    loop = asyncio.get_running_loop()
    received = bytearray()
    closed = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            data = b""
        if data:
            received.extend(data)
            for prompt in [p for p in pending if p in received]:
                os.write(master, pending.pop(prompt))
        elif not closed.done():
            loop.remove_reader(master)
            closed.set_result(None)

    loop.add_reader(master, readable)
    try:
        code = await asyncio.wait_for(process.wait(), RUN_TIMEOUT)
        await asyncio.wait_for(closed, RUN_TIMEOUT)
    finally:
        loop.remove_reader(master)
        os.close(master)
    return code, received.decode()


async def test_action_draws_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    async with lab(tmp_path, vms=6, op_duration=0.8) as env:
        # The password is asked for on the terminal, and not echoed.
        code, screen = await run_in_pty(
            env,
            "register",
            env.url,
            ADMIN_EMAIL,
            answers={b"Password: ": ADMIN_PASSWORD.encode() + b"\n"},
        )
        assert code == 0, screen
        assert "Password: " in screen and ADMIN_PASSWORD not in screen
        assert f"registered as {ADMIN_EMAIL}" in screen
        vms = await env.client.call("xo.getAllObjects", {"filter": {"type": "VM"}})
        halted = next(o["id"] for o in vms.values() if o["power_state"] == "Halted")

        code, screen = await run_in_pty(env, "vm.start", f"id={halted}")
        assert code == 0, screen
        frames = [f for f in screen.split("\r\x1b[K") if f]
        bars = [f for f in frames if f.startswith("vm.start [")]
        percents = [int(f.split("]")[1].split("%")[0]) for f in bars if "…%" not in f]
        # Drawn in place, moving forward with the task, ending full, then the result.
        assert len(bars) >= 3 and percents == sorted(percents), screen
        assert 0 < min(p for p in percents if p) < 100 and percents[-1] == 100
        assert "█" * 10 in bars[-1] and "░" not in bars[-1].split("]")[0]
        assert screen.rstrip().endswith("true")
        after = await env.client.call("xo.getAllObjects", {"filter": {"id": halted}})
        assert after[halted]["power_state"] == "Running"

        # --no-progress on the same terminal: only the result.
        code, screen = await run_in_pty(
            env, "vm.stop", f"id={halted}", "force=true", "--no-progress"
        )
        assert code == 0 and screen.strip() == "true", screen
        after = await env.client.call("xo.getAllObjects", {"filter": {"id": halted}})
        assert after[halted]["power_state"] == "Halted"

        # A method that is not an action (a read) draws nothing either.
        code, screen = await run_in_pty(env, "system.getVersion")
        assert code == 0 and screen.strip() == '"0.1"', screen
