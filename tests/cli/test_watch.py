"""`xod-cli watch`: sees a VM start as it happens, and after a lost connection resumes from
the last revision it printed (the missed change arrives, the snapshot is not replayed)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import orjson

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.cli.helpers import CLI, lab, sim_call

LINE_TIMEOUT = 10.0


class TcpProxy:
    """A loopback TCP relay to xod that the test can cut, as a flaky network would."""

    def __init__(self, port: int | None) -> None:
        assert port is not None, "xod is not listening"
        self.target_port = port
        self.accepting = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def next_record(stdout: asyncio.StreamReader) -> dict[str, Any]:
    line = await asyncio.wait_for(stdout.readline(), LINE_TIMEOUT)
    assert line, "watch ended"
    return orjson.loads(line)


async def read_until(stdout: asyncio.StreamReader, predicate) -> list[dict[str, Any]]:
    seen = []
    while True:
        record = await next_record(stdout)
        seen.append(record)
        if predicate(record):
            return seen


def vm_ref(env: Any, vm_id: str) -> str:
    return next(r for r, rec in env.sim.pool.records("VM").items() if rec["uuid"] == vm_id)


async def test_watch_sees_a_vm_start_and_resumes_after_a_reconnect(tmp_path: Path) -> None:
    async with lab(tmp_path, vms=6) as env, TcpProxy(env.app.port) as proxy:
        url = f"http://127.0.0.1:{proxy.port}"
        registered = await env.cli("register", url, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert registered.code == 0, registered
        vms = await env.client.call("xo.getAllObjects", {"filter": {"type": "VM"}})
        halted = next(o["id"] for o in vms.values() if o["power_state"] == "Halted")

        watch = await asyncio.create_subprocess_exec(
            *CLI,
            "watch",
            "--ndjson",
            "--filter",
            "type:VM",
            "--fields",
            "power_state,name_label",
            env=env.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert watch.stdout is not None and watch.stderr is not None
        try:
            # First the current state of every matching object, then live changes.
            seen: dict[str, dict] = {}
            while not set(vms) <= set(seen):
                record = await next_record(watch.stdout)
                assert record["event"] == "enter"
                assert set(record["object"]) <= {"power_state", "name_label"}
                seen[record["id"]] = record["object"]
            assert {i: o["power_state"] for i, o in seen.items() if i in vms} == {
                i: o["power_state"] for i, o in vms.items()
            }

            # A VM starts (through the pool itself, as another XAPI client would start it).
            await sim_call(env.sim, "VM.start", vm_ref(env, halted), False, False)
            records = await read_until(
                watch.stdout,
                lambda r: r["id"] == halted and r["object"]["power_state"] == "Running",
            )
            last_revision = records[-1]["revision"]

            # The network drops; meanwhile the VM is shut down. The watch reconnects, resumes
            # from its last revision and prints that change (and not the snapshot again).
            proxy.accepting = False
            proxy.cut()
            await sim_call(env.sim, "VM.hard_shutdown", vm_ref(env, halted))
            await asyncio.sleep(0.3)
            proxy.accepting = True
            records = await read_until(
                watch.stdout,
                lambda r: r["id"] == halted and r["object"]["power_state"] == "Halted",
            )
            assert all(r["revision"] > last_revision for r in records)
            # Only the missed changes of that VM: a fresh snapshot would list the others too.
            assert {r["id"] for r in records} == {halted}

            # Down for longer than the server's history reaches back: the watch says so and
            # starts again from the current state (a full listing), then goes on.
            env.app.objects.history_changes = 1
            env.app.objects.history_seconds = 0.0
            proxy.accepting = False
            proxy.cut()
            # Separate batches (the pool sends events every 50 ms): the first ones get dropped.
            for operation in ("VM.start", "VM.hard_shutdown", "VM.start"):
                extra = (False, False) if operation == "VM.start" else ()
                await sim_call(env.sim, operation, vm_ref(env, halted), *extra)
                await asyncio.sleep(0.3)
            proxy.accepting = True
            relisted: dict[str, dict] = {}
            while not set(vms) <= set(relisted):
                record = await next_record(watch.stdout)
                relisted[record["id"]] = record["object"]
            assert relisted[halted]["power_state"] == "Running"
        finally:
            watch.send_signal(signal.SIGINT)
            _, errors = await asyncio.wait_for(watch.communicate(), LINE_TIMEOUT)
        assert watch.returncode == 0, errors
        assert "reconnecting" in errors.decode() and "Traceback" not in errors.decode()
        assert "no longer has the changes since revision" in errors.decode()


async def test_watch_table_for_people(tmp_path: Path) -> None:
    async with lab(tmp_path) as env:
        await env.register()
        watch = await asyncio.create_subprocess_exec(
            *CLI, "watch", "--filter", "type:pool", env=env.env(), stdout=asyncio.subprocess.PIPE
        )
        assert watch.stdout is not None
        header = await asyncio.wait_for(watch.stdout.readline(), LINE_TIMEOUT)
        row = await asyncio.wait_for(watch.stdout.readline(), LINE_TIMEOUT)
        watch.send_signal(signal.SIGINT)
        await asyncio.wait_for(watch.wait(), LINE_TIMEOUT)
        assert header.decode().split() == ["EVENT", "TYPE", "ID", "NAME", "FIELDS"]
        pool = next(
            iter((await env.client.call("xo.getAllObjects", {"filter": {"type": "pool"}})).values())
        )
        assert row.decode().split()[:3] == ["enter", "pool", pool["id"]]
        assert "Simulated pool" in row.decode()
        assert watch.returncode == 0
