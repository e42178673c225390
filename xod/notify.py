"""sd_notify(3) by hand: one datagram per message to $NOTIFY_SOCKET (a path, or '@name' for
the abstract namespace). Without NOTIFY_SOCKET (not run by systemd) every call is a no-op."""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        environ = dict(os.environ) if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        # An abstract socket's name starts with a NUL byte; systemd spells it '@'.
        self.address: str | None = ("\0" + address[1:]) if address.startswith("@") else address
        if not self.address:
            self.address = None
        self.watchdog_seconds = _watchdog_seconds(environ)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send "A=1\\nB=2"; False if there is no socket, it refused (systemd gone) or its
        queue is full. Never blocks: a blocking send to a manager that does not read (its
        queue holds only net.unix.max_dgram_qlen datagrams, 10 by default) would freeze the
        whole event loop, and every client with it."""
        if self.address is None:
            return False
        kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        try:
            with socket.socket(socket.AF_UNIX, kind) as sock:
                sock.sendto("\n".join(fields).encode(), self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        fields = ["READY=1", f"MAINPID={os.getpid()}"]
        return self.send(*fields, *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        # systemd >= 253 wants the reload's start time with RELOADING=1 (then READY=1 when done).
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={now_usec}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")


def _watchdog_seconds(environ: dict[str, str]) -> float | None:
    """WatchdogSec as seconds, if the watchdog is meant for this process (sd_watchdog_enabled)."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1_000_000
