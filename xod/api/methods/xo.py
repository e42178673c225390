"""xo.getAllObjects (xo-jsonrpc §3.3): the whole cache, filtered, or streamed as NDJSON."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import orjson

from xod.api import errors
from xod.api.context import CallContext
from xod.api.matcher import MatcherSyntaxError, compile_filter
from xod.api.registry import SIGNED_IN, Registry

# Objects per chunk written to an NDJSON stream: big enough to amortise the write, small
# enough that the first bytes leave at once.
NDJSON_CHUNK = 500


def select(
    objects: Iterable[tuple[str, Any]], predicate: Callable[[Any], bool] | None, limit: int | None
) -> dict[str, Any]:
    if predicate is None and limit is None and isinstance(objects, dict):
        return objects
    selected: dict[str, Any] = {}
    if limit is not None and limit <= 0:
        return selected
    for object_id, obj in objects:
        if predicate is None or predicate(obj):
            selected[object_id] = obj
            if limit is not None and len(selected) >= limit:
                break
    return selected


def compile_or_raise(filter_spec: Any) -> Callable[[Any], bool] | None:
    if filter_spec is None:
        return None
    try:
        return compile_filter(filter_spec)
    except MatcherSyntaxError as error:
        raise errors.invalid_parameters(
            [
                {
                    "instancePath": "/filter",
                    "schemaPath": "#/properties/filter",
                    "keyword": "syntax",
                    "params": {"position": error.position},
                    "message": f"{error.message} at position {error.position}",
                }
            ]
        ) from None


async def ndjson_stream(objects: list[Any]) -> AsyncIterator[bytes]:
    dumps = orjson.dumps
    for start in range(0, len(objects), NDJSON_CHUNK):
        chunk = objects[start : start + NDJSON_CHUNK]
        yield b"\n".join(dumps(o) for o in chunk) + b"\n"


def register(registry: Registry) -> None:
    @registry.method("xo.getAllObjects", permission=SIGNED_IN)
    async def get_all_objects(ctx: CallContext, params: dict[str, Any]) -> Any:
        predicate = compile_or_raise(params.get("filter"))
        limit = params.get("limit")
        limit = None if limit is None else int(limit)
        objects = ctx.services.objects.objects
        if predicate is None and limit is None:
            # The store replaces objects instead of mutating them: a shallow copy is a snapshot.
            selected = dict(objects)
        else:
            selected = select(objects.items(), predicate, limit)
        if not params.get("ndjson"):
            return selected
        snapshot = list(selected.values())
        url = ctx.services.oneshot.register(lambda: ndjson_stream(snapshot))
        return {"$getFrom": url}
