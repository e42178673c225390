"""The transfer routes as documented: their OpenAPI operations (status codes, content types),
405 with exactly their `Allow` on an export's path, and a strict `raw` flag on imports."""

from __future__ import annotations

from pathlib import Path

from tests.rest.helpers import rest_lab


async def test_transfer_routes_answer_as_documented(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        paths = (await lab.get_json("/docs/openapi.json", token=""))["paths"]
        export = paths["/vms/{id}.xva"]["get"]
        assert "application/octet-stream" in export["responses"]["200"]["content"]
        assert {"404", "422", "401"} <= set(export["responses"])
        vdi_export = paths["/vdis/{id}.{format}"]
        assert set(vdi_export["get"]["responses"]["200"]["content"]) == {
            "application/vhd",
            "application/octet-stream",
        }
        for path in ("/srs/{id}/vdis", "/pools/{id}/vms"):
            imported = paths[path]["post"]
            assert "application/octet-stream" in imported["requestBody"]["content"]
            assert "Location" in imported["responses"]["201"]["headers"]
            assert {"400", "404", "422"} <= set(imported["responses"])
        vm = (await lab.vm_ids())[0]
        # Not the object routes' methods (which would take `<id>.xva` for an id): GET only.
        for method in ("PATCH", "DELETE", "POST", "PUT"):
            response = await lab.request(method, f"/vms/{vm}.xva")
            assert response.status == 405, (method, await response.text())
            assert response.headers["Allow"] == "GET"
        response = await lab.request("DELETE", f"/vdis/{vm}.raw")
        assert response.status == 405 and response.headers["Allow"] == "GET"
        # `raw` is a flag like the listings' ones: anything else is refused, nothing created.
        sr = next(
            o["id"] for o in (await lab.rpc.call("xo.getAllObjects")).values() if o["type"] == "SR"
        )
        response = await lab.request("POST", f"/srs/{sr}/vdis?raw=AAA", data=b"x" * 512)
        assert response.status == 422, await response.text()
        assert "raw" in await response.text()
