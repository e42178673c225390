"""xo.getAllObjects: the whole cache, filtered, or streamed as NDJSON.

The output joins each object's stored JSON (xod/cache/encoded.py) instead of encoding the
objects again: a JSON reply splices `{id: <stored bytes>, …}` in (a msgpack one packs the
objects as usual), an NDJSON download writes the stored bytes one per line."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from xod.api import errors
from xod.api.context import CallContext
from xod.api.oneshot import TooManyDownloads
from xod.api.registry import SIGNED_IN, Registry
from xod.cache.encoded import EncodedObjects, Prepared
from xod.filters import MatcherSyntaxError, compile_filter

# Objects per chunk written to an NDJSON stream: big enough to amortise the write, small
# enough that the first bytes leave at once.
NDJSON_CHUNK = 500


def select(
    objects: Iterable[tuple[str, Any]], predicate: Callable[[Any], bool] | None, limit: int | None
) -> dict[str, Any]:
    selected: dict[str, Any] = {}
    if limit is not None and limit <= 0:
        return selected
    for object_id, obj in objects:
        if predicate is None or predicate(obj):
            selected[object_id] = obj
            if limit is not None and len(selected) >= limit:
                break
    return selected


def filter_syntax_error(error: MatcherSyntaxError) -> errors.ApiError:
    return errors.invalid_parameter(
        "/filter",
        "syntax",
        f"{error.message} at position {error.position}",
        {"position": error.position},
        "#/properties/filter",
    )


def compile_or_raise(filter_spec: Any) -> Callable[[Any], bool] | None:
    if filter_spec is None:
        return None
    try:
        return compile_filter(filter_spec)
    except MatcherSyntaxError as error:
        raise filter_syntax_error(error) from None


async def ndjson_stream(
    encoded: EncodedObjects, objects: list[tuple[str, Any]]
) -> AsyncGenerator[bytes, None]:
    json = encoded.json
    for start in range(0, len(objects), NDJSON_CHUNK):
        chunk = objects[start : start + NDJSON_CHUNK]
        yield b"\n".join([json(i, o) for i, o in chunk] + [b""])


def register(registry: Registry) -> None:
    @registry.method("xo.getAllObjects", permission=SIGNED_IN)
    async def get_all_objects(ctx: CallContext, params: dict[str, Any]) -> Any:
        predicate = compile_or_raise(params.get("filter"))
        limit = params.get("limit")
        limit = None if limit is None else int(limit)
        store = ctx.services.objects
        objects = store.objects
        everything = predicate is None and limit is None
        ndjson = bool(params.get("ndjson"))
        # The store replaces objects instead of mutating them: a shallow copy is a snapshot.
        selected = dict(objects) if everything else select(objects.items(), predicate, limit)
        encoded = store.encoded
        if not ndjson:
            return Prepared(selected, lambda: encoded.fragments(selected.items()))
        # Taken at call time as XO does, held until fetched: the caller's pending downloads
        # are capped (OneShotUrls.per_owner), so no one holds more than a few snapshots.
        snapshot = list(selected.items())
        owner = ctx.require_user().id
        try:
            url = ctx.services.oneshot.register(
                lambda: ndjson_stream(encoded, snapshot), owner=owner
            )
        except TooManyDownloads as error:
            raise errors.unknown_error(str(error)) from None
        return {"$getFrom": url}
