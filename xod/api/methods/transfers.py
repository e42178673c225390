"""vm.export, vdi.exportContent (`$getFrom`), vm.import, vdi.importContent, disk.import
(`$sendTo`): the JSON-RPC side of the streamed transfers (xod/api/transfers.py), as Xen
Orchestra has them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from xod.api import errors, transfers
from xod.api.commands import Command
from xod.api.context import CallContext
from xod.api.jobs import commands_of
from xod.api.oneshot import Receiver, TooManyDownloads
from xod.api.registry import Registry

SR_TYPES = ("SR",)


def _command(ctx: CallContext, name: str) -> Command:
    return Command(commands_of(ctx.services), name)


def _get_from(ctx: CallContext, export: transfers.Export) -> dict[str, str]:
    oneshot = ctx.services.oneshot
    try:
        url = oneshot.register(export.stream, export.content_type, owner=ctx.require_user().id)
    except TooManyDownloads as error:
        raise errors.unknown_error(str(error)) from None
    return {"$getFrom": url}


def _send_to(ctx: CallContext, receiver: Receiver) -> dict[str, str]:
    try:
        url = ctx.services.oneshot.register_upload(receiver, owner=ctx.require_user().id)
    except TooManyDownloads as error:
        raise errors.unknown_error(str(error)) from None
    return {"$sendTo": url}


def _compression(value: Any) -> str | None:
    """XO's `compress`: true → gzip, "zstd"/"gzip" as such, false/absent → none."""
    if value is True or value == "gzip":
        return "gzip"
    return "zstd" if value == "zstd" else None


def register(registry: Registry) -> None:
    async def vm_export(ctx: CallContext, params: dict[str, Any]) -> Any:
        command = _command(ctx, "vm.export")
        export = transfers.vm_export(command, params["vm"], _compression(params.get("compress")))
        return _get_from(ctx, export)

    async def vdi_export_content(ctx: CallContext, params: dict[str, Any]) -> Any:
        command = _command(ctx, "vdi.exportContent")
        export = transfers.vdi_export(command, params["id"], params.get("format", "vhd"))
        return _get_from(ctx, export)

    async def vm_import(ctx: CallContext, params: dict[str, Any]) -> Any:
        command = _command(ctx, "vm.import")
        sr = command.ref_of(params["sr"], SR_TYPES)

        async def receive(body: AsyncIterator[bytes], length: int | None) -> Any:
            ref = await transfers.import_vm(command, sr, body, length)
            await command.settle()
            return command.id_of(ref) or ref

        return _send_to(ctx, receive)

    async def vdi_import_content(ctx: CallContext, params: dict[str, Any]) -> Any:
        command = _command(ctx, "vdi.importContent")
        vdi = command.ref_of(params["id"], transfers.VDI_TYPES)
        fmt = params.get("format", "vhd")

        async def receive(body: AsyncIterator[bytes], length: int | None) -> Any:
            await transfers.import_vdi_content(command, vdi, fmt, body, length)
            return True

        return _send_to(ctx, receive)

    async def disk_import(ctx: CallContext, params: dict[str, Any]) -> Any:
        command = _command(ctx, "disk.import")
        sr = command.ref_of(params["sr"], SR_TYPES)
        fmt = params.get("type", "vhd")

        async def receive(body: AsyncIterator[bytes], length: int | None) -> Any:
            ref = await transfers.import_new_vdi(
                command, sr, fmt, body, length,
                name_label=params["name"], name_description=params.get("description", ""),
            )  # fmt: skip
            await command.settle()
            return command.id_of(ref) or ref

        return _send_to(ctx, receive)

    registry.add("vm.export", vm_export, "write")
    registry.add("vdi.exportContent", vdi_export_content, "write")
    registry.add("vm.import", vm_import, "write")
    registry.add("vdi.importContent", vdi_import_content, "write")
    registry.add("disk.import", disk_import, "write")
