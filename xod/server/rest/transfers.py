"""The REST exports and imports: `GET /vms/{id}.xva`, `GET /vdis/{id}.vhd|.raw` (and the
snapshots'), `POST /srs/{id}/vdis` (a VHD or raw body → a new VDI), `POST /pools/{id}/vms` (an
XVA → a new VM).

Each runs the JSON-RPC method that does the same (`vm.export`, `vdi.exportContent`,
`disk.import`, `vm.import`: one permission check, one streaming code, xod/api/transfers.py)
and serves its one-shot URL's stream or receiver itself, on the request at hand.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from xod.api.errors import ApiError
from xod.api.oneshot import Receiver
from xod.api.transfers import VDI_CONTENT_TYPES
from xod.server.downloads import stream_download
from xod.server.rest.context import BASE, Caller, RestContext
from xod.server.rest.errors import RestError, json_response, unprocessable
from xod.server.rest.params import flag

UPLOAD_CHUNK = 256 * 1024
# XO's invalidParameters: what the uploaded file holds is wrong (a bad VHD…): a 400 here.
INVALID_PARAMETERS = 10
VM_COLLECTIONS = ("vms", "vm-snapshots", "vm-templates")
VDI_COLLECTIONS = ("vdis", "vdi-snapshots")
VDI_FORMATS = tuple(VDI_CONTENT_TYPES)
# `?compress=` of a VM export, as XO reads it.
COMPRESSIONS = ["", "true", "false", "gzip", "zstd"]


def _compress(value: str | None) -> str | bool:
    if value is None or value.lower() in ("", "false"):
        return False
    if value.lower() in ("true", "gzip"):
        return "gzip"
    if value.lower() == "zstd":
        return "zstd"
    raise unprocessable("compress", "must be gzip or zstd", value)


async def _serve(
    rest: RestContext, request: web.Request, result: Any, filename: str
) -> web.StreamResponse:
    taken = rest.services.oneshot.take(str(result["$getFrom"]).rpartition("/")[2])
    if taken is None:  # registered a moment ago by the method: cannot happen
        raise RestError(500, "the download vanished")
    content_type, stream = taken
    headers = {
        "Content-Type": content_type,
        "Content-Disposition": f"attachment; filename={filename}",
    }
    return await stream_download(request, stream, headers)


async def export_vm(rest: RestContext, request: web.Request, caller: Caller) -> web.StreamResponse:
    object_id = request.match_info["id"]
    params = {"vm": object_id, "compress": _compress(request.query.get("compress"))}
    result = await rest.call(caller, "vm.export", params)
    return await _serve(rest, request, result, f"{object_id}.xva")


async def export_vdi(rest: RestContext, request: web.Request, caller: Caller) -> web.StreamResponse:
    object_id, fmt = request.match_info["id"], request.match_info["format"]
    if fmt not in VDI_FORMATS:
        raise unprocessable("format", "must be vhd or raw", fmt)
    result = await rest.call(caller, "vdi.exportContent", {"id": object_id, "format": fmt})
    return await _serve(rest, request, result, f"{object_id}.{fmt}")


async def _receive(rest: RestContext, request: web.Request, result: Any) -> Any:
    receiver: Receiver | None = rest.services.oneshot.take_upload(
        str(result["$sendTo"]).rpartition("/")[2]
    )
    if receiver is None:
        raise RestError(500, "the upload vanished")
    try:
        return await receiver(request.content.iter_chunked(UPLOAD_CHUNK), request.content_length)
    except ApiError as error:
        if error.code == INVALID_PARAMETERS:
            raise RestError(400, error.message) from None
        raise


def _created(collection: str, object_id: Any) -> web.Response:
    location = f"{BASE}/{collection}/{object_id}"
    return json_response({"id": object_id}, status=201, headers={"Location": location})


async def import_vdi(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    query = request.query
    params = {
        "sr": request.match_info["id"],
        "type": "raw" if flag(query, "raw") else "vhd",
        "name": query.get("name_label") or "Imported VDI",  # as xapi names one it creates
        "description": query.get("name_description", ""),
    }
    result = await rest.call(caller, "disk.import", params)
    return _created("vdis", await _receive(rest, request, result))


async def import_vm(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    sr = request.query.get("sr")
    if sr is None:
        pool = rest.services.objects.get(request.match_info["id"])
        if pool is None or pool.get("type") != "pool":
            raise RestError(404, f"no such pool {request.match_info['id']}")
        sr = pool.get("default_SR")
        if not sr:
            raise unprocessable("sr", "the pool has no default SR: give one", None)
    result = await rest.call(caller, "vm.import", {"sr": sr, "type": "xva"})
    return _created("vms", await _receive(rest, request, result))


async def get_only(rest: RestContext, request: web.Request, caller: Caller) -> web.Response:
    """An export's path with another method: 405 with exactly its `Allow`, not whatever the
    object routes (which would take `<id>.xva` for an id) allow."""
    raise web.HTTPMethodNotAllowed(request.method, ["GET"])


EXPORTS = [(f"/{c}/{{id}}.xva", export_vm) for c in VM_COLLECTIONS] + [
    (f"/{c}/{{id}}.{{format}}", export_vdi) for c in VDI_COLLECTIONS
]
# (method, route, handler): added before the generic collection routes, which would otherwise
# take `/vms/<id>.xva` for an object id; an export's path answers any other method with 405.
ROUTES: tuple[tuple[str, str, Any], ...] = (
    *[
        (method, path, h)
        for path, export in EXPORTS
        for method, h in (("GET", export), ("*", get_only))
    ],
    ("POST", "/srs/{id}/vdis", import_vdi),
    ("POST", "/pools/{id}/vms", import_vm),
)
