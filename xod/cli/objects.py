"""list-objects: `xo.getAllObjects` streamed as NDJSON, printed as a JSON array.

`key=value` arguments are the lodash-style filter object (matched by the server); `--filter`
takes a complex-matcher expression (`"type:VM power_state:Running"`). Given both, the server
applies the expression and the client the object — the one filter param cannot carry both.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import orjson

from xod.cli.config import Config, load_registered
from xod.cli.output import JsonArrayWriter, pick
from xod.cli.session import registered_connection
from xod.cli.transfer import get_from, ndjson_lines
from xod.filters import partial_match


async def list_objects(
    fields: list[str],
    filter_object: dict[str, Any],
    expression: str | None,
    limit: int | None,
) -> int:
    config: Config = load_registered()
    params: dict[str, Any] = {"ndjson": True}
    local_filter: dict[str, Any] | None = None
    if expression is not None:
        params["filter"] = expression
        local_filter = filter_object or None
    elif filter_object:
        params["filter"] = filter_object
    if limit is not None and local_filter is None:
        params["limit"] = limit
    async with registered_connection(config) as connection:
        result = await connection.call("xo.getAllObjects", params)
        with JsonArrayWriter() as out:
            if isinstance(result, dict) and isinstance(result.get("$getFrom"), str):
                assert config.server is not None
                chunks = get_from(config.server, result["$getFrom"], config.allow_unauthorized)
                async with aclosing(chunks), aclosing(ndjson_lines(chunks)) as lines:
                    async for line in lines:
                        if _emit(out, orjson.loads(line), fields, local_filter, limit):
                            break
            else:
                # A server that ignores `ndjson` answers with the object map itself.
                for obj in (result or {}).values():
                    if _emit(out, obj, fields, local_filter, limit):
                        break
    return 0


def _emit(
    out: JsonArrayWriter,
    obj: Any,
    fields: list[str],
    local_filter: dict[str, Any] | None,
    limit: int | None,
) -> bool:
    """Write one object; True once `limit` objects are out."""
    if local_filter is not None and not partial_match(local_filter, obj):
        return False
    out.add(pick(obj, fields) if fields else obj)
    return limit is not None and out.count >= limit
