"""`?ndjson&watch=true` on any collection: update/remove lines as changes happen, revision
bookmarks, and a watch resumed with `since` after its connection was cut."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.rest.helpers import RestLab, rest_lab


async def next_line(response: aiohttp.ClientResponse, what: str) -> Any:
    async with asyncio.timeout(10):  # waiting for `what`
        return orjson.loads(await response.content.readline())


async def lines_until(response: aiohttp.ClientResponse, predicate: Any, what: str) -> list[Any]:
    seen = []
    while True:
        line = await next_line(response, what)
        seen.append(line)
        if predicate(line):
            return seen


def is_a(event: str) -> Any:
    return lambda line: line[0] == event


async def open_watch(lab: RestLab, query: str) -> aiohttp.ClientResponse:
    response = await lab.http.get(
        lab.url(f"/vms?ndjson=true&watch=true&{query}"), cookies=lab.cookies
    )
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/x-ndjson"
    return response


async def test_watch_resumed_with_since_after_a_cut(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        vm_ids = await lab.vm_ids()
        first, second = vm_ids[0], vm_ids[1]
        response = await open_watch(lab, "fields=name_label")
        start = int(response.headers["X-Xod-Revision"])
        assert await next_line(response, "the first bookmark") == ["revision", start]

        await lab.rpc.call("vm.set", {"id": first, "name_label": "renamed once"})
        seen = await lines_until(response, is_a("update"), "the rename")
        assert seen[-1] == [
            "update",
            {"name_label": "renamed once", "href": f"/rest/v0/vms/{first}"},
        ]
        revision_line = await lines_until(response, is_a("revision"), "a bookmark")
        resume_from = revision_line[-1][1]
        response.close()  # the connection is cut

        await lab.rpc.call("vm.set", {"id": second, "name_label": "renamed while away"})
        snapshot = await lab.rpc.call("vm.snapshot", {"id": second, "name": "snap"})
        await lab.rpc.call("vm.delete", {"id": snapshot})
        response = await open_watch(lab, f"fields=name_label&since={resume_from}")
        missed = await lines_until(response, is_a("revision"), "the missed changes")
        assert [
            "update",
            {"name_label": "renamed while away", "href": f"/rest/v0/vms/{second}"},
        ] in missed
        # Only what changed since: the first VM's rename is not sent again.
        assert not any(line[0] == "update" and line[1]["href"].endswith(first) for line in missed)
        # Live again after the resume.
        await lab.rpc.call("vm.set", {"id": first, "name_label": "renamed twice"})
        seen = await lines_until(response, is_a("update"), "the live rename")
        assert seen[-1][1]["name_label"] == "renamed twice"
        response.close()


async def test_watch_removals_hrefs_and_errors(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        vm_id = (await lab.vm_ids())[0]
        response = await lab.http.get(lab.url("/vm-snapshots?ndjson&watch"), cookies=lab.cookies)
        await next_line(response, "the first bookmark")
        snapshot = await lab.rpc.call("vm.snapshot", {"id": vm_id, "name": "s"})
        href = f"/rest/v0/vm-snapshots/{snapshot}"
        seen = await lines_until(
            response, lambda line: line == ["update", href], "the new snapshot"
        )
        await lab.rpc.call("vm.delete", {"id": snapshot})
        seen = await lines_until(response, is_a("remove"), "the removal")
        assert seen[-1] == ["remove", href]
        response.close()

        response = await lab.request("GET", "/vms?ndjson&watch&since=999999999")
        assert response.status == 410
        assert (await response.json())["data"]["revision"] == 999999999
        response = await lab.request("GET", "/vms?ndjson&watch&filter=(")
        assert response.status == 400
        response = await lab.request("GET", "/users?ndjson&watch")
        assert response.status == 400
        response = await lab.request("GET", "/vms?since=3")
        assert response.status == 400


async def test_a_watcher_that_stops_reading_is_cut(tmp_path: Path) -> None:
    """The WebSocket subscribers' bound: a stream whose writes stay blocked for longer than
    `client_max_lag` is ended (the client resumes with `since`), nothing piles up for it."""
    options = {"client_max_lag": 0.5, "ws_send_buffer": 4096}
    async with rest_lab(tmp_path, options, vms=300) as lab:
        reader, writer = await asyncio.open_connection(lab.app.config.host, lab.app.port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # Everything since revision 0 (the whole initial load), then never read.
        writer.write(
            (
                "GET /rest/v0/vms?ndjson&watch&fields=*&since=0 HTTP/1.1\r\n"
                f"Host: x\r\nCookie: authenticationToken={lab.token}\r\n\r\n"
            ).encode()
        )
        await asyncio.sleep(2.0)  # well past client_max_lag: the stream must be ended by now
        received = b""
        async with asyncio.timeout(10):  # everything sent, up to the cut
            with contextlib.suppress(ConnectionError):
                while chunk := await reader.read(65536):
                    received += chunk
        writer.close()
        assert received.startswith(b"HTTP/1.1 200")
        # Cut before the end: a full resume holds every VM and ends with a revision line.
        assert received.count(b'["update",') < 300
        assert b'["revision",' not in received
        assert await lab.get_json("/pools")  # xod serves on
