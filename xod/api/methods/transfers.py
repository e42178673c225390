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
from xod.api.methods.vm_migration import check_disk_srs
from xod.api.oneshot import Receiver, TooManyDownloads
from xod.api.registry import Registry
from xod.api.resolve import object_method

SR_TYPES = ("SR",)


def _command(ctx: CallContext, name: str) -> Command:
    return Command(commands_of(ctx.services), name, user=ctx.user)


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
    # The permissions, as xo-server's `resolve` entries for these methods declare them.
    @object_method(registry, "vm.export", resolve=[("vm", transfers.VM_TYPES, "administrate")])
    async def vm_export(ctx: CallContext, params: dict[str, Any]) -> Any:
        command = _command(ctx, "vm.export")
        export = transfers.vm_export(command, params["vm"], _compression(params.get("compress")))
        if export.snapshot_of is not None:  # as xo-server: a running VM's disks are read live
            check_disk_srs(command, command.resolve(params["vm"], transfers.VM_TYPES), "operate")
        return _get_from(ctx, export)

    @object_method(registry, "vdi.exportContent", resolve=[("id", transfers.VDI_TYPES, "view")])
    async def vdi_export_content(ctx: CallContext, params: dict[str, Any]) -> Any:
        command = _command(ctx, "vdi.exportContent")
        export = transfers.vdi_export(command, params["id"], params.get("format", "vhd"))
        return _get_from(ctx, export)

    @object_method(registry, "vm.import", resolve=[("sr", SR_TYPES, "administrate")])
    async def vm_import(ctx: CallContext, params: dict[str, Any]) -> Any:
        command = _command(ctx, "vm.import")
        sr = command.ref_of(params["sr"], SR_TYPES)

        async def receive(body: AsyncIterator[bytes], length: int | None) -> Any:
            ref = await transfers.import_vm(command, sr, body, length)
            await command.settle()
            return command.id_of(ref) or ref

        return _send_to(ctx, receive)

    @object_method(registry, "vdi.importContent", resolve=[("id", transfers.VDI_TYPES, "operate")])
    async def vdi_import_content(ctx: CallContext, params: dict[str, Any]) -> Any:
        command = _command(ctx, "vdi.importContent")
        vdi = command.ref_of(params["id"], transfers.VDI_TYPES)
        fmt = params.get("format", "vhd")

        async def receive(body: AsyncIterator[bytes], length: int | None) -> Any:
            await transfers.import_vdi_content(command, vdi, fmt, body, length)
            return True

        return _send_to(ctx, receive)

    @object_method(registry, "disk.import", resolve=[("sr", SR_TYPES, "administrate")])
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
