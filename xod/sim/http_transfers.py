"""The pool master's disk and VM transfer handlers, with real bytes (xod/formats):

- `GET /export?ref=|uuid=[&use_compression=zstd|gzip|true]`: the VM as an XVA;
- `PUT /import[?sr_id=|sr_uuid=]`: an XVA (plain, gzip or zstd) back into a new VM;
- `GET /export_raw_vdi?vdi=[&format=raw|vhd]`: a VDI's content;
- `PUT /import_raw_vdi?vdi=|sr_id=[&format=raw|vhd]`: replaces a VDI's content (or, raw with
  an SR, fills a new "Imported VDI" of the body's length).

As in xapi: authentication by `session_id` (cookie, then query) or HTTP Basic (a temporary
session); each transfer runs under the client's `task_id` or a task of its own (`task-id`
response header), whose progress moves with the bytes and whose cancellation stops it. The
status line goes out before the data, so failures after it only show in the task. Paths match
with or without XO's trailing slash.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from xod.formats import vhd, xva
from xod.sim.errors import XapiFailure
from xod.sim.schema import CLASSES
from xod.sim.transfer_auth import (
    Refused,
    Transfer,
    cancel_requested,
    drop,
    open_transfer,
    param,
    refusal,
    resolve,
)
from xod.sim.values import NULL_REF

if TYPE_CHECKING:
    from xod.sim.disks import Disks
    from xod.sim.pool import SimPool

Handler = Callable[[web.BaseRequest, str, bool], Awaitable[web.StreamResponse]]
READ_CHUNK = 256 * 1024
EXPORT_VERSION = {
    "hostname": "xod-sim", "date": "2026-01-01", "product_version": "8.3.0",
    "product_brand": "XCP-ng", "build_number": "sim", "xapi_major": 25, "xapi_minor": 6,
    "export_vsn": 2,
}  # fmt: skip
_OCTETS = "application/octet-stream"


class Transfers:
    """The four handlers of one pool."""

    def __init__(self, pool: SimPool) -> None:
        self.pool = pool

    def routes(self) -> dict[str, tuple[str, Handler]]:
        """path → (HTTP method, handler)."""
        return {
            "/export": ("GET", self.export),
            "/import": ("PUT", self.import_vm),
            "/export_raw_vdi": ("GET", self.export_raw_vdi),
            "/import_raw_vdi": ("PUT", self.import_raw_vdi),
        }

    async def _run(
        self,
        request: web.BaseRequest,
        host: str,
        local: bool,
        name: str,
        prepare: Callable[[Transfer], Any],
        body: Callable[[Transfer, web.StreamResponse, Any], Awaitable[Any]],
        headers: Callable[[Any], dict[str, str]],
    ) -> web.StreamResponse:
        """Authenticate, check (`prepare`, before any status), answer 200 with the task id,
        then move the data (`body`) and finish the task with its result."""
        pool = self.pool
        try:
            transfer = open_transfer(pool, request, host, local, name)
        except Refused as refused:
            return refusal(refused)
        try:
            try:
                prepared = await prepare(transfer)
            except Refused as refused:
                pool.tasks.fail(transfer.task, refused.failure)
                return refusal(refused)
            except XapiFailure as failure:
                pool.tasks.fail(transfer.task, failure)
                return refusal(Refused(500, failure))
            response = web.StreamResponse(
                headers={"Connection": "close", "task-id": transfer.task, **headers(prepared)}
            )
            await response.prepare(request)
            try:
                result = await body(transfer, response, prepared)
            except XapiFailure as failed:
                pool.tasks.fail(transfer.task, failed)
                drop(request)
                return response
            except (ConnectionError, OSError) as error:
                code = "TASK_CANCELLED" if cancel_requested(pool, transfer.task) else ""
                lost = XapiFailure(code or "CLIENT_ERROR", str(error) or "connection lost")
                pool.tasks.fail(transfer.task, lost)
                drop(request)
                return response
            pool.tasks.succeed(transfer.task, result)
            with contextlib.suppress(ConnectionError, OSError):
                await response.write_eof()
            return response
        finally:
            transfer.close()

    # -- exports ---------------------------------------------------------------------------------

    async def export(self, request: web.BaseRequest, host: str, local: bool) -> web.StreamResponse:
        compression = request.query.get("use_compression", "").lower()
        method: xva.Compression = (
            "zstd" if compression == "zstd" else "gzip" if compression in ("true", "gzip") else None
        )

        async def prepare(_transfer: Transfer) -> str:
            vm = resolve(self.pool, "VM", request.query.get("ref") or request.query.get("uuid"))
            state = self.pool.db.get("VM", vm)["power_state"]
            if state not in ("Halted", "Suspended"):
                raise XapiFailure("VM_BAD_POWER_STATE", vm, "halted", state.lower())
            return vm

        async def body(transfer: Transfer, response: web.StreamResponse, vm: str) -> str:
            ova, disks = self._ova(vm)
            total = sum(len(d.allocated) for d in disks) * xva.CHUNK_SIZE or 1
            sent = 0
            for chunk in xva.compress(xva.write_xva(ova, disks), method):
                await response.write(chunk)
                sent += len(chunk)
                transfer.progress(sent, total)
            return ""

        return await self._run(
            request, host, local, "VM.export", prepare, body,
            lambda _vm: {
                "Content-Type": _OCTETS,
                "Content-Disposition": 'attachment; filename="export.xva"',
            },
        )  # fmt: skip

    def _ova(self, vm: str) -> tuple[bytes, list[xva.Disk]]:
        """ova.xml of a VM (its record, disk VBDs, their VDIs and SRs) and its disks."""
        db = self.pool.db
        order: list[tuple[str, str]] = [("VM", vm)]
        for vbd in db.get("VM", vm)["VBDs"]:
            vbd_record = db.find("VBD", vbd)
            if vbd_record is None or vbd_record["type"] == "CD" or vbd_record["VDI"] == NULL_REF:
                continue
            order.append(("VBD", vbd))
            vdi_record = db.get("VDI", vbd_record["VDI"])
            for item in (("VDI", vbd_record["VDI"]), ("SR", vdi_record["SR"])):
                if item not in order:
                    order.append(item)
        ids = {ref: f"Ref:{index}" for index, (_cls, ref) in enumerate(order)}
        objects = [
            {"class": cls, "id": ids[ref], "snapshot": _rewrite(db.get(cls, ref), ids)}
            for cls, ref in order
        ]
        disks = self.pool.disks
        exported = [
            xva.Disk(ids[ref], disks.size_of(ref), disks.allocated(ref), partial(disks.read, ref))
            for cls, ref in order
            if cls == "VDI"
        ]
        return xva.encode_ova_xml(EXPORT_VERSION, objects), exported

    async def export_raw_vdi(
        self, request: web.BaseRequest, host: str, local: bool
    ) -> web.StreamResponse:
        fmt = request.query.get("format", "raw").lower()

        async def prepare(_transfer: Transfer) -> str:
            if fmt not in ("raw", "vhd"):
                raise Refused(404, XapiFailure("INTERNAL_ERROR", f"Unknown format {fmt}"))
            vdi = resolve(self.pool, "VDI", request.query.get("vdi"))
            if fmt == "vhd" and self.pool.disks.size_of(vdi) > vhd.MAX_VIRTUAL_SIZE:
                raise XapiFailure("VDI_TOO_LARGE", vdi, str(vhd.MAX_VIRTUAL_SIZE))
            return vdi

        async def body(transfer: Transfer, response: web.StreamResponse, vdi: str) -> str:
            chunks = self._vhd(vdi) if fmt == "vhd" else self._raw(vdi)
            total = self.pool.disks.size_of(vdi)
            sent = 0
            for chunk in chunks:
                await response.write(chunk)
                sent += len(chunk)
                transfer.progress(sent, total)
            return ""

        def headers(vdi: str) -> dict[str, str]:
            uuid = self.pool.db.get("VDI", vdi)["uuid"]
            kind = "application/vhd" if fmt == "vhd" else _OCTETS
            return {
                "Content-Type": kind,
                "Content-Disposition": f'attachment; filename="{uuid}.{fmt}"',
            }

        return await self._run(request, host, local, "VDI.export", prepare, body, headers)

    def _raw(self, vdi: str) -> Iterator[bytes]:
        disks = self.pool.disks
        for index in range(-(-disks.size_of(vdi) // xva.CHUNK_SIZE)):
            yield disks.read(vdi, index)

    def _vhd(self, vdi: str) -> Iterator[bytes]:
        disks = self.pool.disks
        per_block = vhd.BLOCK_SIZE // xva.CHUNK_SIZE
        blocks = sorted({index // per_block for index in disks.allocated(vdi)})

        def read_block(block: int) -> bytes:
            first = block * per_block
            return b"".join(disks.read(vdi, first + i) for i in range(per_block))

        return vhd.encode(disks.size_of(vdi), blocks, read_block)

    # -- imports ---------------------------------------------------------------------------------

    async def import_raw_vdi(
        self, request: web.BaseRequest, host: str, local: bool
    ) -> web.StreamResponse:
        fmt = request.query.get("format", "raw").lower()
        pool = self.pool

        async def prepare(transfer: Transfer) -> str:
            if fmt not in ("raw", "vhd") or "Transfer-Encoding" in request.headers:
                raise Refused(404, XapiFailure("INTERNAL_ERROR", f"Cannot handle {fmt}"))
            if request.query.get("vdi"):
                return resolve(pool, "VDI", request.query.get("vdi"))
            sr_value = param(request, "sr_id") or param(request, "sr_uuid")
            if sr_value is None:
                raise Refused(400, XapiFailure("VDI_MISSING"))
            if fmt != "raw" or request.content_length is None:
                raise Refused(400, XapiFailure("INTERNAL_ERROR", "a new VDI needs a raw length"))
            sr = resolve(pool, "SR", sr_value)
            return str(await transfer.call("VDI.create", _new_vdi(sr, request.content_length)))

        async def body(transfer: Transfer, _response: web.StreamResponse, vdi: str) -> str:
            disks = pool.disks
            size = disks.size_of(vdi)
            disks.reset(vdi)
            total = request.content_length or size
            received = 0
            decoder = vhd.VhdDecoder() if fmt == "vhd" else None
            try:
                async for data in request.content.iter_chunked(READ_CHUNK):
                    received += len(data)
                    writes = decoder.feed(data) if decoder else [(received - len(data), data)]
                    for offset, piece in writes:
                        _write_within(disks, vdi, size, offset, piece)
                    transfer.progress(received, total)
                if decoder is not None:
                    decoder.finish()
                elif request.content_length is not None and received != request.content_length:
                    raise XapiFailure(
                        "VDI_IO_ERROR", f"body ended after {received} of {total} bytes"
                    )
            except vhd.VhdError as error:
                raise XapiFailure("VDI_IO_ERROR", str(error)) from None
            return vdi

        return await self._run(
            request,
            host,
            local,
            "VDI.import",
            prepare,
            body,
            lambda _vdi: {"Content-Type": _OCTETS},
        )

    async def import_vm(
        self, request: web.BaseRequest, host: str, local: bool
    ) -> web.StreamResponse:
        pool = self.pool

        async def prepare(_transfer: Transfer) -> str:
            if "Transfer-Encoding" in request.headers:
                raise Refused(403, XapiFailure("INTERNAL_ERROR", "Cannot_handle_chunked"))
            sr_value = param(request, "sr_id") or param(request, "sr_uuid")
            if sr_value is None:
                return str(pool.db.get("pool", pool.pool_ref)["default_SR"])
            return resolve(pool, "SR", sr_value)

        async def body(transfer: Transfer, _response: web.StreamResponse, sr: str) -> list[str]:
            created: list[tuple[str, str]] = []
            try:
                return await self._import_xva(transfer, request, sr, created)
            except BaseException:
                for cls, ref in reversed(created):
                    with contextlib.suppress(XapiFailure):
                        await transfer.call(f"{cls}.destroy", ref)
                raise

        return await self._run(
            request, host, local, "VM.import", prepare, body, lambda _sr: {"Content-Type": _OCTETS}
        )

    async def _import_xva(
        self, transfer: Transfer, request: web.BaseRequest, sr: str, created: list[tuple[str, str]]
    ) -> list[str]:
        reader = xva.XvaReader()
        vdis: dict[str, str] = {}  # Ref:N -> new VDI ref
        vms: list[str] = []
        total = request.content_length or 1
        received = 0
        try:
            async for data in request.content.iter_chunked(READ_CHUNK):
                received += len(data)
                for event in reader.feed(data):
                    if event[0] == "ova":
                        vms = await self._create_objects(transfer, event[1], sr, vdis, created)
                    else:
                        _kind, ref_id, offset, chunk = event
                        if ref_id not in vdis:
                            raise XapiFailure("IMPORT_ERROR", f"chunk for unknown disk {ref_id}")
                        self.pool.disks.write(vdis[ref_id], offset, chunk)
                transfer.progress(received, total)
            reader.finish()
        except (xva.XvaError, ValueError) as error:
            raise XapiFailure("IMPORT_ERROR", str(error)) from None
        return vms

    async def _create_objects(
        self,
        transfer: Transfer,
        ova: dict[str, Any],
        sr: str,
        vdis: dict[str, str],
        created: list[tuple[str, str]],
    ) -> list[str]:
        objects = [o for o in ova["objects"] if isinstance(o, dict)]
        new_refs: dict[str, str] = {}
        for obj in objects:
            if obj.get("class") == "VDI":
                record = {**_settable("VDI", obj["snapshot"], new_refs), "SR": sr}
                ref = await transfer.call("VDI.create", record)
                created.append(("VDI", ref))
                self.pool.disks.reset(ref)
                vdis[obj["id"]] = new_refs[obj["id"]] = ref
        vms = []
        for obj in objects:
            if obj.get("class") == "VM":
                ref = await transfer.call("VM.create", _settable("VM", obj["snapshot"], new_refs))
                created.append(("VM", ref))
                new_refs[obj["id"]] = ref
                vms.append(ref)
        for obj in objects:
            if obj.get("class") == "VBD":
                ref = await transfer.call("VBD.create", _settable("VBD", obj["snapshot"], new_refs))
                created.append(("VBD", ref))
        if not vms:
            raise XapiFailure("IMPORT_ERROR", "the XVA holds no VM")
        return vms


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    """A record with every OpaqueRef replaced by its export id (or NULL if not exported)."""
    if isinstance(value, str) and value.startswith("OpaqueRef:"):
        return ids.get(value, NULL_REF)
    if isinstance(value, dict):
        return {k: _rewrite(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    return value


def _settable(cls: str, snapshot: Any, new_refs: dict[str, str]) -> dict[str, Any]:
    """The fields of an exported record a `create` takes, export ids mapped to new refs."""
    if not isinstance(snapshot, dict):
        raise XapiFailure("IMPORT_ERROR", f"{cls} snapshot is not a struct")
    fields = CLASSES[cls].fields
    record = {}
    for name, value in snapshot.items():
        spec = fields.get(name)
        if spec is None or spec.qualifier not in ("RW", "RC") or spec.kind == "datetime":
            continue
        if spec.kind == "ref":
            value = new_refs.get(value, NULL_REF) if isinstance(value, str) else NULL_REF
        record[name] = value
    return record


def _new_vdi(sr: str, size: int) -> dict[str, Any]:
    return {
        "name_label": "Imported VDI", "name_description": "", "SR": sr, "virtual_size": size,
        "type": "user", "sharable": False, "read_only": False, "other_config": {},
    }  # fmt: skip


def _write_within(disks: Disks, vdi: str, size: int, offset: int, data: bytes) -> None:
    """Write an image's bytes to a VDI; only zeros may lie past its end (qemu rounds VHD sizes
    up to a disk geometry)."""
    inside = max(0, min(len(data), size - offset))
    if data[inside:].count(0) != len(data) - inside:
        raise XapiFailure("VDI_IO_ERROR", f"the image is larger than the VDI ({size} bytes)")
    if inside:
        disks.write(vdi, offset, data[:inside])
