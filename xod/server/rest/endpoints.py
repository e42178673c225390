"""Every endpoint of `/rest/v0` per collection, listed once from the declarations: the router
registers exactly these (so `405` and its `Allow` are exact) and the OpenAPI document
describes exactly these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xod.server.rest.collections import (
    COLLECTION_NAMES,
    SUB_COLLECTIONS,
    TYPE_OF_COLLECTION,
    VM_TYPES,
)
from xod.server.rest.declarations import (
    ACTIONS,
    DELETE_METHODS,
    PATCH_METHODS,
    TAGGABLE_TYPES,
    RestAction,
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    kind: str  # what handles it: list, get, task, patch, delete, tag, actions, action, sub
    collection: str
    xo_type: str | None
    action: RestAction | None = None
    sub: str | None = None

    @property
    def route(self) -> str:
        """The aiohttp path: the collection (and action, sub-collection) as fixed variables,
        so handlers read them from `match_info`."""
        path = f"/{{collection:{self.collection}}}"
        if self.kind != "list":
            path += "/{id}"
        return path + self._tail(lambda name, value: f"{{{name}:{value}}}")

    @property
    def path(self) -> str:
        """The OpenAPI path."""
        path = f"/{self.collection}" + ("" if self.kind == "list" else "/{id}")
        return path + self._tail(lambda name, value: value)

    def _tail(self, fixed: Callable[[str, str], str]) -> str:
        if self.kind == "tag":
            return "/tags/{tag}"
        if self.kind == "actions":
            return "/actions"
        if self.action is not None:
            return "/actions/" + fixed("action", self.action.name)
        if self.sub is not None:
            return "/" + fixed("sub", self.sub)
        return ""


def collection_endpoints(name: str) -> list[Endpoint]:
    xo_type = TYPE_OF_COLLECTION.get(name)
    found = [
        Endpoint("GET", "list", name, xo_type),
        Endpoint("GET", "task" if name == "tasks" else "get", name, xo_type),
    ]
    if xo_type is None:
        return found
    if xo_type in PATCH_METHODS:
        found.append(Endpoint("PATCH", "patch", name, xo_type))
    if xo_type in DELETE_METHODS:
        found.append(Endpoint("DELETE", "delete", name, xo_type))
    if xo_type in TAGGABLE_TYPES:
        found += [Endpoint(m, "tag", name, xo_type) for m in ("PUT", "DELETE")]
    actions = ACTIONS.get(xo_type, {})
    if actions:
        found.append(Endpoint("GET", "actions", name, xo_type))
    for action in actions.values():
        found.append(Endpoint("GET", "action", name, xo_type, action=action))
        found.append(Endpoint("POST", "action", name, xo_type, action=action))
    for sub in SUB_COLLECTIONS:
        if sub != "vdis" or xo_type in VM_TYPES:
            found.append(Endpoint("GET", "sub", name, xo_type, sub=sub))
    return found


ENDPOINTS: list[Endpoint] = [e for name in COLLECTION_NAMES for e in collection_endpoints(name)]
