"""VM and VDI exports and imports streamed through xod, for the JSON-RPC one-shot URLs
(`$getFrom` / `$sendTo`, xod/api/methods/transfers.py) and any other HTTP front end.

Each transfer runs under an XAPI task created here (its progress moves in the cache as the pool
master reports it), and the master's status line is not trusted: the task's outcome says whether
the bytes were whole.

- An export is an async generator the HTTP side writes out: the master's body, which the HTTP
  side splices or copies to the client at the client's pace (xod/server/passthrough.py). A
  client that goes away closes the generator, which cancels the task; a failure after the
  first byte raises out of the generator, so the HTTP side cuts the response short instead of
  ending it cleanly.
- An import reads the client's body as it forwards it. A VHD's footer and header are checked
  before anything reaches the master (a bad one is refused with the reason); a VDI created for
  the import is destroyed if the import fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from xod.api import errors
from xod.api.commands import Command
from xod.formats import vhd
from xod.xapi import NULL_REF, transfers
from xod.xapi.errors import TransportError, XapiError

log = logging.getLogger("xod.api.transfers")

# A VHD's footer and header must lie within this many first bytes to be checked up front.
VHD_HEAD_LIMIT = 64 * 1024
VDI_TYPES = ("VDI", "VDI-snapshot")
VM_TYPES = ("VM", "VM-snapshot", "VM-template")
# Task failures that blame the uploaded image (xapi's stream decoders).
BAD_IMAGE_ERRORS = frozenset({"VDI_IO_ERROR", "IMPORT_ERROR"})
# A VDI's content formats, and what each is served as.
VDI_CONTENT_TYPES = {"vhd": "application/vhd", "raw": "application/octet-stream"}


def invalid_image(reason: str) -> errors.ApiError:
    return errors.ApiError(10, f"invalid image: {reason}", {"errors": [{"message": reason}]})


def length_required() -> errors.ApiError:
    message = "the upload needs a Content-Length"
    return errors.ApiError(10, message, {"errors": [{"message": message}]})


@dataclass
class Export:
    """A download to stream: what the master serves at `path?query`, under a task `label`."""

    command: Command
    path: str
    query: dict[str, str]
    label: str
    content_type: str
    # A running VM is exported through a snapshot taken for it (xo-server names it so), removed
    # with its disks once the export ends: (VM ref, snapshot name).
    snapshot_of: tuple[str, str] | None = None

    async def stream(self) -> AsyncGenerator[bytes | transfers.Body, None]:
        command = self.command
        query = dict(self.query)
        snapshot = None
        if self.snapshot_of is not None:
            vm_ref, name = self.snapshot_of
            snapshot = str(await command.run("VM.snapshot", vm_ref, name, []))
            query["ref"] = snapshot
        try:
            async with contextlib.aclosing(self._stream(query)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            if snapshot is not None:
                command.commands.spawn(_destroy_snapshot(command, snapshot))

    async def _stream(self, query: dict[str, str]) -> AsyncGenerator[transfers.Body, None]:
        command = self.command
        task = await command.send("task.create", self.label, "")
        download: transfers.Body | None = None
        complete = False
        try:
            try:
                download = await transfers.download(
                    command.connection, self.path, {**query, "task_id": task}
                )
            except transfers.TransferRefused as refused:
                await _outcome(command, task, self.label)  # the task's error says why
                message = f"the pool master refused the export: {refused}"
                raise errors.unknown_error(message) from None
            yield download  # taken whole before this generator goes on
            await _outcome(command, task, self.label)
            complete = True
        finally:
            if not complete:
                # The client left, the stream broke, or the task failed: stop the master's side
                # (cancel first, so that the closed connection reads as a cancellation there).
                command.commands.spawn(_abandon(command, task, download))
            elif download is not None:
                await download.close()


async def _outcome(command: Command, task: str, label: str) -> Any:
    """The task's result once the cache shows it ended; its failure as an XO error."""
    try:
        return await command.wait_task(task, label)
    except XapiError as error:
        raise command.translate(error) from None


async def _abandon(command: Command, task: str, download: transfers.Body | None) -> None:
    with contextlib.suppress(TransportError, XapiError, errors.ApiError):
        await command.send("task.cancel", task)
    if download is not None:
        await download.close()
    with contextlib.suppress(TransportError, XapiError, errors.ApiError):
        await asyncio.wait_for(command.wait_task(task, "transfer"), command.commands.task_recheck)


async def _destroy_snapshot(command: Command, snapshot: str) -> None:
    """Remove an export's snapshot and its disks (not its CDs: their VDIs are the ISOs')."""
    try:
        disks = []
        for vbd in await command.send("VM.get_VBDs", snapshot):
            record = await command.send("VBD.get_record", vbd)
            if record.get("type") == "Disk" and record.get("VDI", NULL_REF) != NULL_REF:
                disks.append(record["VDI"])
        await command.send("VM.destroy", snapshot)
        for vdi in disks:
            await command.send("VDI.destroy", vdi)
    except (TransportError, XapiError, errors.ApiError) as error:
        log.warning("could not remove the snapshot of an export: %s", error)


def vm_export(command: Command, vm_id: str, compress: str | None) -> Export:
    vm = command.resolve(vm_id, VM_TYPES)
    name = vm.get("name_label", "")
    query = {"ref": vm["_xapiRef"]}
    if compress:
        query["use_compression"] = compress
    running = vm.get("power_state") in ("Running", "Paused") and vm.get("type") == "VM"
    return Export(
        command, "/export/", query, f"VM export {name}", "application/octet-stream",
        (vm["_xapiRef"], f"[XO Export] {name}") if running else None,
    )  # fmt: skip


def vdi_export(command: Command, vdi_id: str, fmt: str) -> Export:
    vdi = command.resolve(vdi_id, VDI_TYPES)
    return Export(
        command, "/export_raw_vdi/", {"vdi": vdi["_xapiRef"], "format": fmt},
        f"Exporting content of VDI {vdi.get('name_label', '')} as {fmt} stream",
        VDI_CONTENT_TYPES.get(fmt, "application/octet-stream"),
    )  # fmt: skip


# -- imports -------------------------------------------------------------------------------------


async def read_vhd_head(body: AsyncIterator[bytes]) -> tuple[bytes, vhd.Footer]:
    """The first bytes of a VHD upload, enough to check its footer and header: the bytes read
    (to send on first) and the footer. A bad head is refused with the reason."""
    head = b""
    needed = vhd.FOOTER_SIZE
    while len(head) < needed:
        chunk = await anext(body, None)
        if chunk is None:
            break
        head += chunk
    while True:
        try:
            probed = vhd.probe(head)
        except vhd.VhdError as error:
            raise invalid_image(str(error)) from None
        if not isinstance(probed, int):
            return head, probed[0]
        chunk = await anext(body, None) if probed <= VHD_HEAD_LIMIT else None
        if chunk is None:
            raise invalid_image(f"truncated VHD: its header needs {probed} bytes")
        head += chunk


async def _chain(head: bytes, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in body:
        yield chunk


async def _upload(
    command: Command,
    path: str,
    query: dict[str, str],
    body: AsyncIterator[bytes],
    length: int,
    label: str,
) -> Any:
    task = await command.send("task.create", label, "")
    try:
        await transfers.upload(command.connection, path, {**query, "task_id": task}, body, length)
    except transfers.TransferRefused as refused:
        await _outcome(command, task, label)
        raise errors.unknown_error(f"the pool master refused the import: {refused}") from None
    try:
        return await command.wait_task(task, label)
    except XapiError as error:
        if error.code in BAD_IMAGE_ERRORS:  # the master found the image wrong: the client's
            raise invalid_image(": ".join(map(str, error.params))) from None
        raise command.translate(error) from None


async def import_vdi_content(
    command: Command, vdi_ref: str, fmt: str, body: AsyncIterator[bytes], length: int | None
) -> None:
    """Replace a VDI's content with a raw or VHD image."""
    if length is None:
        raise length_required()
    head = b""
    if fmt == "vhd":
        head, _footer = await read_vhd_head(body)
    await _upload(
        command, "/import_raw_vdi/", {"vdi": vdi_ref, "format": fmt}, _chain(head, body),
        length, "Importing content into VDI",
    )  # fmt: skip


async def import_new_vdi(
    command: Command,
    sr_ref: str,
    fmt: str,
    body: AsyncIterator[bytes],
    length: int | None,
    *,
    name_label: str,
    name_description: str = "",
) -> str:
    """A new VDI on the SR holding the image: its ref. The VDI's size is the VHD's virtual size
    or the raw image's length; it is destroyed again if the import fails."""
    if length is None:
        raise length_required()
    head = b""
    size = length
    if fmt == "vhd":
        head, footer = await read_vhd_head(body)
        size = footer.virtual_size
    elif length <= 0:
        raise invalid_image("an empty raw image")
    record = {
        "name_label": name_label, "name_description": name_description, "SR": sr_ref,
        "virtual_size": str(size), "type": "user", "sharable": False, "read_only": False,
        "other_config": {},
    }  # fmt: skip
    vdi = str(await command.call("VDI.create", record))
    try:
        await _upload(
            command, "/import_raw_vdi/", {"vdi": vdi, "format": fmt}, _chain(head, body),
            length, f"Importing content into VDI {name_label}",
        )  # fmt: skip
    except BaseException:
        # Shielded: a client gone mid-upload must not leave the half-written VDI behind.
        await asyncio.shield(command.commands.spawn(_destroy_vdi(command, vdi)))
        raise
    return vdi


async def _destroy_vdi(command: Command, vdi: str) -> None:
    try:
        await command.send("VDI.destroy", vdi)
    except (TransportError, XapiError, errors.ApiError) as error:
        log.warning("could not destroy the VDI of a failed import: %s", error)


async def import_vm(
    command: Command, sr_ref: str, body: AsyncIterator[bytes], length: int | None
) -> str:
    """A new VM from an XVA (plain, gzip or zstd): its ref. On failure the master removes
    what it created."""
    if length is None:
        raise length_required()
    result = await _upload(command, "/import/", {"sr_id": sr_ref}, body, length, "VM import")
    refs = result if isinstance(result, list) else [result]
    if not refs or not isinstance(refs[0], str):
        raise errors.unknown_error("the pool master's import returned no VM")
    return refs[0]
