"""Collection listings: filter (the JSON-RPC complex matcher), limit, map (hrefs, `fields`,
`*`), then JSON, NDJSON or Markdown — streamed, so the first objects leave before the last
ones are encoded.

`Mapper.encode` is the one place an object becomes its listed bytes: the `*` case splices the
object's stored JSON (xod/cache/encoded.py) with its href instead of encoding it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
from aiohttp import web

from xod.api.subscriptions import compile_projection
from xod.cache.encoded import EncodedObjects
from xod.filters import MatcherSyntaxError, compile_filter
from xod.server.rest.collections import Items
from xod.server.rest.errors import RestError
from xod.server.rest.params import ListingQuery

NDJSON = "application/x-ndjson"
# Objects in the first written chunk (small: the first byte leaves at once), then per chunk.
FIRST_CHUNK = 64
CHUNK = 2000

Predicate = Callable[[Any], bool]


def compile_rest_filter(filter_spec: str | None) -> Predicate | None:
    """The filter of a listing; a syntax error is XO's 400 with the position."""
    if filter_spec is None:
        return None
    try:
        return compile_filter(filter_spec)
    except MatcherSyntaxError as error:
        raise RestError(400, error.message, {"stringToParse": filter_spec}) from None


class Mapper:
    """What a listing shows of each object: its href (no `fields`), the object with its href
    (`*`), or the requested dotted paths with the href."""

    def __init__(
        self, fields: tuple[str, ...] | None, encoded: EncodedObjects | None = None
    ) -> None:
        self.fields = fields
        self.whole = fields is not None and "*" in fields
        self.projection = None if fields is None or self.whole else compile_projection(fields)
        # Where whole objects' JSON is kept (None: encode each one).
        self.encoded = encoded if self.whole else None

    def value(self, obj: dict[str, Any], href: str) -> Any:
        if self.fields is None:
            return href
        shown = dict(obj) if self.projection is None else self.projection(obj)
        shown["href"] = href
        return shown

    def encode(self, obj: dict[str, Any], href: str) -> bytes:
        object_id = obj.get("id")
        if self.encoded is None or type(object_id) is not str or "href" in obj or not obj:
            return orjson.dumps(self.value(obj, href))
        # `{…}` + href: the stored JSON without its closing brace, then the href member.
        stored = self.encoded.json(object_id, obj)
        return b"".join((stored[:-1], b',"href":', orjson.dumps(href), b"}"))


def select(items: Items, predicate: Predicate | None, limit: int | None) -> Items:
    if limit is not None and limit <= 0:
        return
    count = 0
    for obj, href in items:
        if predicate is None or predicate(obj):
            yield obj, href
            count += 1
            if limit is not None and count >= limit:
                return


def _chunks(encoded: Iterator[bytes]) -> Iterator[list[bytes]]:
    size = FIRST_CHUNK
    chunk: list[bytes] = []
    for line in encoded:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
            size = CHUNK
    if chunk:
        yield chunk


async def respond(
    request: web.Request,
    items: Items,
    query: ListingQuery,
    encoded: EncodedObjects | None = None,
) -> web.StreamResponse:
    """The listing of `items`; `encoded`: where the cache keeps its objects' JSON."""
    predicate = compile_rest_filter(query.filter)
    mapper = Mapper(query.fields, encoded)
    selected = select(items, predicate, query.limit)
    if query.markdown:
        return markdown_response([mapper.value(o, h) for o, h in selected])
    lines = (mapper.encode(obj, href) for obj, href in selected)
    response = web.StreamResponse(
        headers={"Content-Type": NDJSON if query.ndjson else "application/json"}
    )
    await response.prepare(request)
    if query.ndjson:
        for chunk in _chunks(lines):
            await response.write(b"\n".join(chunk) + b"\n")
    else:
        separator = b"["
        for chunk in _chunks(lines):
            await response.write(separator + b",".join(chunk))
            separator = b","
        await response.write(b"[]" if separator == b"[" else b"]")
    await response.write_eof()
    return response


def json_list_response(values: Iterable[Any]) -> web.Response:
    return web.Response(body=orjson.dumps(list(values)), content_type="application/json")


# -- Markdown ------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(values: list[Any]) -> str:
    """XO's `?markdown=true`: a table with the first object's keys (without `href`) as
    columns; plain hrefs one per line; `No results.` for nothing."""
    if not values:
        return "No results.\n"
    if not isinstance(values[0], dict):
        return "\n".join(str(v) for v in values) + "\n"
    columns = [key for key in values[0] if key != "href"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for value in values:
        lines.append("| " + " | ".join(_cell(value.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def markdown_response(values: list[Any]) -> web.Response:
    return web.Response(text=markdown_table(values), content_type="text/markdown", charset="utf-8")
