"""The generated OpenAPI document: schemathesis (a real client, generating requests from the
document) checks every operation answers as documented; the docs page is served by xod."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.rest.helpers import RestLab, rest_lab
from tests.sim.transfer_helpers import MiB
from xod.server.rest.collections import collection_name
from xod.server.rest.endpoints import ENDPOINTS
from xod.server.rest.transfers import ROUTES as TRANSFER_ROUTES

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(sys.executable).parent / "st")
# Bounded: a couple of examples per operation (plus the coverage phase's own cases) keeps the
# run around 30 s on 2 cores.
MAX_EXAMPLES = 2
PHASES = ("examples", "coverage", "fuzzing")
IMPORTS = ("/srs/{id}/vdis", "/pools/{id}/vms")


async def schemathesis_config(lab: RestLab) -> str:
    """Real ids for the read-only operations (so they answer 200, not only 404), and no ids
    learnt from responses: the fuzzer must not start, clone or delete the lab's VMs."""
    # Every disk a few MiB: the fuzzer's exports stay quick.
    for vdi in list(lab.sim.pool.records("VDI")):
        lab.sim.pool.db.update("VDI", vdi, {"virtual_size": 2 * MiB})
    everything = await lab.rpc.call("xo.getAllObjects")
    one_of: dict[str, str] = {}
    for object_id, obj in everything.items():
        one_of.setdefault(collection_name(obj["type"]), object_id)
    lines = [f"[phases.{p}]\nextra-data-sources = {{ responses = false }}\n" for p in PHASES]
    document = await lab.get_json("/docs/openapi.json")
    for path, item in document["paths"].items():
        collection = path.split("/")[1]
        for method in item:
            # Reads, and the imports (a fuzzed body is refused or makes a new object): never
            # an action on the lab's objects.
            if method == "parameters" or "{id}" not in path or collection not in one_of:
                continue
            if method == "get" or path in IMPORTS:
                lines.append(
                    f'[[operations]]\ninclude-name = "{method.upper()} {path}"\n'
                    f'parameters = {{ "path.id" = "{one_of[collection]}" }}\n'
                )
    for method in ("GET", "POST"):
        lines.append(
            f'[[operations]]\ninclude-name = "{method} /users/{{id}}/authentication_tokens"\n'
            'parameters = { "path.id" = "me" }\n'
        )
    return "\n".join(lines)


async def test_schemathesis_against_the_document(tmp_path: Path) -> None:
    async with rest_lab(tmp_path, hosts=1, vms=2, templates=1) as lab:
        config = tmp_path / "schemathesis.toml"
        config.write_text(await schemathesis_config(lab))
        process = await asyncio.create_subprocess_exec(
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            lab.url("/docs/openapi.json"),
            "--auth",
            f"{ADMIN_EMAIL}:{ADMIN_PASSWORD}",
            "--checks",
            "all",
            # Not applicable: xod answers the same to every signed-in admin by design; 401
            # without credentials is checked by tests/rest/test_auth.py; and what OpenAPI
            # cannot say (a filter must parse, `since` needs `watch`, `watch` needs `ndjson`,
            # `ndjson` and `markdown` exclude each other) makes some schema-valid requests
            # 400/422 by design (tests/rest/test_collections.py checks those answers).
            "--exclude-checks",
            "ignored_auth,object_level_authorization,positive_data_acceptance",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--phases",
            ",".join(PHASES),
            "--workers",
            "1",
            "--seed",
            "1",
            "--request-timeout",
            "10",
            "--suppress-health-check",
            "all",
            "--no-color",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,  # its cache directory goes there
            env={
                "HOME": str(tmp_path),
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(ROOT),
                "SCHEMATHESIS_HOOKS": "tests.rest.schemathesis_hooks",
            },
        )
        output, _ = await asyncio.wait_for(process.communicate(), 180)  # the whole run
        report = output.decode(errors="replace")
        assert process.returncode == 0, report[-16000:]
        assert " passed" in report and "Tested: " in report


async def test_document_and_docs_page(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        document = await lab.get_json("/docs/openapi.json", token="")
        assert document["openapi"] == "3.1.0"
        assert await lab.get_json("/docs/swagger.json", token="") == document
        paths = document["paths"]
        assert "/vms/{id}/actions/clean_shutdown" in paths
        assert "/vm-templates/{id}/actions/clone" in paths
        assert "/hosts/{id}/actions/start" not in paths
        assert {"get"} <= set(paths["/vdis"]) and "patch" in paths["/srs/{id}"]
        # Exactly what is routed: every documented operation exists, nothing else does.
        routed = {(e.method.lower(), e.path) for e in ENDPOINTS}
        routed |= {(m.lower(), path) for m, path, _ in TRANSFER_ROUTES if m != "*"}
        documented = {
            (method, path)
            for path, item in paths.items()
            for method in item
            if method != "parameters"
        }
        assert routed <= documented
        response = await lab.request("GET", "/docs", token="")
        page = await response.text()
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "/rest/v0/vms/{id}/actions/clean_shutdown" in page
        assert "<script" not in page and "http" not in page
