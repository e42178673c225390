"""Query parameters of the REST API, parsed leniently as XO's legacy router did: a flag present
without a value (`?ndjson`) is true, as are `true`/`1`/`yes`; `false`/`0`/`no` are false."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xod.server.rest.errors import RestError, unprocessable

_TRUE = frozenset({"", "true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def flag(query: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = query.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise unprocessable(name, "invalid boolean value", value)


def integer(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise unprocessable(name, "invalid integer value", value) from None
    if number < 0:
        raise unprocessable(name, "must be a non-negative integer", value)
    return number


@dataclass(frozen=True, slots=True)
class ListingQuery:
    """What a collection request asks for: `fields` None = hrefs, `("*",)` = whole objects."""

    fields: tuple[str, ...] | None
    filter: str | None
    limit: int | None
    ndjson: bool
    markdown: bool
    watch: bool
    since: int | None

    @property
    def whole(self) -> bool:
        return self.fields is not None and "*" in self.fields


def listing_query(query: Mapping[str, str]) -> ListingQuery:
    raw_fields = query.get("fields")
    fields = None
    if raw_fields is not None:
        fields = tuple(f for f in (part.strip() for part in raw_fields.split(",")) if f)
    ndjson = flag(query, "ndjson")
    markdown = flag(query, "markdown")
    watch = flag(query, "watch")
    if ndjson and markdown:
        raise RestError(422, "ndjson and markdown cannot be used together")
    if watch and not ndjson:
        raise RestError(400, "watch=true requires ndjson=true")
    since = integer(query, "since")
    if since is not None and not watch:
        raise RestError(400, "since requires watch=true")
    filter_spec = query.get("filter")
    return ListingQuery(
        fields=fields,
        filter=filter_spec if filter_spec else None,
        limit=integer(query, "limit"),
        ndjson=ndjson,
        markdown=markdown,
        watch=watch,
        since=since,
    )


def json_body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RestError(422, "the request body must be a JSON object")
    return body
