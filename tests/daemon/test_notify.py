"""sd_notify datagrams reach a real socket, by path or in the abstract namespace."""

from __future__ import annotations

import os
import socket
import threading

from tests.daemon.helpers import NotifyListener
from xod.notify import Notifier


def test_messages_to_a_path_socket(notify_listener: NotifyListener) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_listener.path})
    assert notifier.ready(status="serving")
    message = notify_listener.wait_for("READY")
    assert message["MAINPID"] == str(os.getpid())
    assert message["STATUS"] == "serving"
    assert notifier.reloading() and notifier.watchdog() and notifier.stopping()
    notify_listener.wait_for("STOPPING")
    assert next(m for m in notify_listener.messages if "RELOADING" in m)["MONOTONIC_USEC"].isdigit()
    assert {"WATCHDOG": "1"} in notify_listener.messages


def test_abstract_namespace_socket() -> None:
    name = f"xod-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).stopping()
        assert sock.recv(100) == b"STOPPING=1"


def test_without_systemd_everything_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog_seconds is None


def test_watchdog_interval_is_for_this_process_only() -> None:
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_seconds == 30.0
    mine = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_seconds == 2.0
    other = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}
    assert Notifier(other).watchdog_seconds is None


def test_a_manager_that_does_not_read_never_blocks_the_sender() -> None:
    """The daemon sends from its event loop: a full notify queue must drop a datagram, not
    freeze every client (the demo test hung that way when its listener fell behind)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unread:
        unread.bind("\0" + f"xod-test-unread-{os.getpid()}")
        notifier = Notifier({"NOTIFY_SOCKET": f"@xod-test-unread-{os.getpid()}"})
        results: list[bool] = []
        sender = threading.Thread(
            target=lambda: results.extend(notifier.watchdog() for _ in range(100)), daemon=True
        )
        sender.start()
        sender.join(10)  # 100 sends, whose queue holds far fewer
        assert not sender.is_alive(), "a send blocked on a full notify socket"
        assert results[0] is True and results[-1] is False  # the overflow is dropped
