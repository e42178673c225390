"""Collections: every cache type plus servers and users, hrefs, fields, filter, limit, the
three formats, sub-collections — and the same objects as JSON-RPC's xo.getAllObjects."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.cli.helpers import sim_call
from tests.rest.helpers import rest_lab, wait_for
from xod.server.rest.collections import collection_name


async def test_every_cache_type_is_a_collection_agreeing_with_json_rpc(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        everything = await lab.rpc.call("xo.getAllObjects")
        types = {obj["type"] for obj in everything.values()}
        assert {"VM", "VM-template", "host", "pool", "SR", "VDI", "VBD", "VIF", "network"} <= types
        for xo_type in types:
            name = collection_name(xo_type)
            listed = await lab.get_json(f"/{name}?fields=*")
            expected = {i: o for i, o in everything.items() if o["type"] == xo_type}
            assert {o["id"]: {k: v for k, v in o.items() if k != "href"} for o in listed} == (
                expected
            ), name
            assert all(o["href"] == f"/rest/v0/{name}/{o['id']}" for o in listed)
            one = next(iter(expected))
            assert await lab.get_json(f"/{name}/{one}") == expected[one]


async def test_listing_parameters(tmp_path: Path) -> None:
    async with rest_lab(tmp_path, vms=6) as lab:
        vms = await lab.rpc.call("xo.getAllObjects", {"filter": {"type": "VM"}})
        hrefs = await lab.get_json("/vms")
        assert sorted(hrefs) == sorted(f"/rest/v0/vms/{i}" for i in vms)
        listed = await lab.get_json("/vms?fields=name_label,CPUs.number,missing")
        assert {o["href"].rsplit("/", 1)[1]: o for o in listed} == {
            i: {
                "name_label": v["name_label"],
                "CPUs": {"number": v["CPUs"]["number"]},
                "href": f"/rest/v0/vms/{i}",
            }
            for i, v in vms.items()
        }
        running = [i for i, v in vms.items() if v["power_state"] == "Running"]
        listed = await lab.get_json("/vms?fields=power_state&filter=power_state:running")
        assert sorted(o["href"].rsplit("/", 1)[1] for o in listed) == sorted(running)
        assert len(await lab.get_json("/vms?limit=2")) == 2
        assert await lab.get_json("/vms?limit=0") == []

        for query in ("ndjson", "ndjson=true", "ndjson=1"):
            response = await lab.request("GET", f"/vms?fields=name_label&{query}")
            assert response.headers["Content-Type"] == "application/x-ndjson"
            lines = (await response.read()).splitlines()
            assert sorted(orjson.loads(line)["name_label"] for line in lines) == sorted(
                v["name_label"] for v in vms.values()
            )
        response = await lab.request("GET", "/vms?fields=name_label&ndjson=false")
        assert response.headers["Content-Type"] == "application/json"

        response = await lab.request("GET", "/vms?fields=name_label,power_state&markdown=true")
        assert response.headers["Content-Type"] == "text/markdown; charset=utf-8"
        text = await response.text()
        assert text.startswith("| name_label | power_state |\n| --- | --- |\n")
        assert len(text.splitlines()) == 2 + len(vms)
        response = await lab.request("GET", "/vms?filter=nothing-matches-this&markdown")
        assert await response.text() == "No results.\n"


async def test_listing_errors(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        cases = {
            "/vms?filter=a:)": (
                400,
                {
                    "error": "parse error: expected end of input at position 1",
                    "data": {"stringToParse": "a:)"},
                },
            ),
            "/vms?limit=many": (
                422,
                {
                    "error": {"limit": {"message": "invalid integer value", "value": "many"}},
                    "data": {},
                },
            ),
            "/vms?ndjson=maybe": (
                422,
                {
                    "error": {"ndjson": {"message": "invalid boolean value", "value": "maybe"}},
                    "data": {},
                },
            ),
            "/vms?ndjson&markdown": (422, {"error": "ndjson and markdown cannot be used together"}),
            "/vms?watch=true": (400, {"error": "watch=true requires ndjson=true"}),
            "/no-such-things": (404, {"error": "Not Found"}),
        }
        for path, (status, body) in cases.items():
            response = await lab.request("GET", path)
            assert (response.status, await response.json()) == (status, body), path
        # The daemon keeps serving.
        assert await lab.get_json("/pools")


async def test_sub_collections(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        everything = await lab.rpc.call("xo.getAllObjects")
        vm_id = next(i for i, o in everything.items() if o["type"] == "VM" and o["$VBDs"])
        vm = everything[vm_id]
        disks = {
            everything[everything[vbd]["VDI"]]["id"]
            for vbd in vm["$VBDs"]
            if everything[vbd].get("VDI")
        }
        hrefs = await lab.get_json(f"/vms/{vm_id}/vdis")
        assert sorted(hrefs) == sorted(
            f"/rest/v0/{collection_name(everything[i]['type'])}/{i}" for i in disks
        )
        assert await lab.get_json(f"/vms/{vm_id}/vdis?fields=name_label&limit=1") != []
        await lab.rpc.call("vm.pause", {"id": vm_id})
        tasks = await lab.get_json(f"/vms/{vm_id}/tasks?fields=status")
        assert tasks == []  # JSON-RPC actions are not REST tasks; their XAPI tasks are gone
        response = await lab.request("POST", f"/vms/{vm_id}/actions/unpause")
        task_id = (await response.json())["taskId"]
        tasks = await lab.get_json(f"/vms/{vm_id}/tasks?fields=properties.name")
        assert {
            "properties": {"name": "REST API: unpause VM"},
            "href": f"/rest/v0/tasks/{task_id}",
        } in tasks
        await sim_call(lab.sim, "message.create", "VM_REBOOTED", 3, "VM", vm_id, "rebooted")
        await wait_for(
            lambda: lab.get_json(f"/vms/{vm_id}/messages?filter=name:VM_REBOOTED"),
            "the message in the cache",
        )
        messages = await lab.get_json(f"/vms/{vm_id}/messages?fields=name,body,$object")
        assert [(m["name"], m["body"], m["$object"]) for m in messages] == [
            ("VM_REBOOTED", "rebooted", vm_id)
        ]
        assert messages[0]["href"].startswith("/rest/v0/messages/")
        host_id = (
            vm["$container"]
            if everything.get(vm["$container"], {}).get("type") == "host"
            else next(i for i, o in everything.items() if o["type"] == "host")
        )
        response = await lab.request("GET", f"/hosts/{host_id}/vdis")
        assert response.status == 404
        response = await lab.request("GET", f"/vms/{vm_id}/tasks?ndjson&watch")
        assert response.status == 400


async def test_listing_is_streamed(tmp_path: Path) -> None:
    """A big listing leaves in several HTTP chunks as it is encoded, not as one body built
    first (bench/rest_list.py times it: the first byte long before the last)."""
    async with rest_lab(tmp_path, vms=300) as lab:
        async with lab.http.get(
            lab.url("/vms?fields=name_label&ndjson"), cookies=lab.cookies
        ) as response:
            assert response.headers["Transfer-Encoding"] == "chunked"
            assert "Content-Length" not in response.headers
            chunks, data = 0, b""
            async for chunk, end_of_chunk in response.content.iter_chunks():
                data += chunk
                chunks += end_of_chunk
        assert chunks >= 2
        assert len(data.splitlines()) == 300
