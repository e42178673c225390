"""Run the real `xod` process (`python -m xod serve …`) and watch what it says: stdout (the
banner), stderr (JSON log lines) and, optionally, its sd_notify datagrams."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class NotifyListener:
    """A NOTIFY_SOCKET datagram socket, read continuously as systemd's manager does (a socket
    left unread fills after net.unix.max_dgram_qlen datagrams, and later ones are lost)."""

    def __init__(self) -> None:
        # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
        self.directory = tempfile.mkdtemp(prefix="xod-notify-")
        self.path = os.path.join(self.directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)  # how soon the reader notices close()
        self.messages: list[dict[str, str]] = []
        self._arrived = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="notify-listener", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            lines = data.decode().splitlines()
            fields = dict(line.split("=", 1) for line in lines if "=" in line)
            with self._arrived:
                self.messages.append(fields)
                self._arrived.notify_all()

    def wait_for(self, key: str, value: str = "1", timeout: float = 20.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for message in self.messages:
                    if message.get(key) == value:
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {key}={value} within {timeout} s; got {self.messages}"
                    )
                self._arrived.wait(left)

    def close(self) -> None:
        self._closed = True
        self._reader.join(5)
        self.sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)


class XodProcess:
    def __init__(
        self,
        args: list[str],
        tmp: Path,
        *,
        env: dict[str, str] | None = None,
        notify: NotifyListener | None = None,
    ) -> None:
        self.stdout_path = tmp / "stdout.txt"
        self.stderr_path = tmp / "stderr.txt"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("XOD_")}
        full_env.pop("NOTIFY_SOCKET", None)
        full_env["PYTHONPATH"] = str(REPO)
        if notify is not None:
            full_env["NOTIFY_SOCKET"] = notify.path
        full_env.update(env or {})
        self.stdout_file = self.stdout_path.open("wb")
        self.stderr_file = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xod", "serve", *args],
            cwd=tmp,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=self.stdout_file,
            stderr=self.stderr_file,
        )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def log_events(self) -> list[dict[str, Any]]:
        """Every stderr line, each of which must be one JSON object (logs off a terminal)."""
        return [json.loads(line) for line in self.stderr.splitlines() if line.strip()]

    def wait_log(self, event: str, timeout: float = 20.0, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.log_events():
                if entry.get("event") == event and all(
                    entry.get(k) == v for k, v in fields.items()
                ):
                    return entry
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no log event {event!r} {fields}; stderr:\n{self.stderr[-3000:]}")

    def wait_stdout(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.stdout)
            if match:
                return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"stdout never matched {pattern!r}:\n{self.stdout}\n{self.stderr}")

    def url(self, timeout: float = 20.0) -> str:
        return self.wait_log("listening", timeout)["url"]

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(Exception):
            self.stdout_file.close()
            self.stderr_file.close()


def run_xod(args: list[str], tmp: Path, env: dict[str, str] | None = None, timeout: float = 30):
    """Run `xod serve …` to completion (for the invalid-configuration cases)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("XOD_")}
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "xod", "serve", *args],
        cwd=tmp,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
