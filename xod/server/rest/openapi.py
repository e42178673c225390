"""The OpenAPI 3.1 document of `/rest/v0`, generated from the same declarations the handlers
use (collections, actions and their bodies, PATCH fields, tags, deletions), so it cannot drift.
Served at `/rest/v0/docs/openapi.json` (and `swagger.json`, Xen Orchestra's name)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from xod.api.schema import ParamsValidator
from xod.server.rest.collections import (
    COLLECTION_NAMES,
    SUB_COLLECTIONS,
    TYPE_OF_COLLECTION,
    VM_TYPES,
)
from xod.server.rest.context import BASE
from xod.server.rest.declarations import (
    ACTIONS,
    DELETE_METHODS,
    PATCH_BODY,
    PATCH_METHODS,
    TAGGABLE_TYPES,
)

ERROR = {"$ref": "#/components/schemas/Error"}
JSON_ANY = {"application/json": {"schema": {}}}
FLAG = {"type": "string", "enum": ["", "true", "false", "1", "0"]}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


AUTH_ERRORS = {
    "400": _error("bad request (two authentication methods, malformed header)"),
    "401": {
        **_error("missing or invalid credentials"),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    "403": _error("not enough permissions"),
}
ACTION_ERRORS = {
    "404": _error("no such object"),
    "409": _error("incorrect state"),
    "422": _error("invalid parameters"),
    "500": _error("the pool refused the operation (a XAPI error)"),
    "501": _error("not implemented"),
    "503": _error("the pool is unreachable"),
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


LISTING_PARAMS = [
    _query("fields", {"type": "string"}, "comma-separated dotted paths, or * for everything"),
    _query("filter", {"type": "string"}, "a complex-matcher filter (as xo.getAllObjects')"),
    _query("limit", {"type": "integer", "minimum": 0}, "at most this many objects"),
    _query("ndjson", FLAG, "one JSON value per line (application/x-ndjson)"),
    _query("markdown", FLAG, "a Markdown table"),
]
WATCH_PARAMS = [
    _query("watch", FLAG, "with ndjson: stream changes as they happen"),
    _query("since", {"type": "integer", "minimum": 0}, "with watch: resume after this revision"),
]
LISTED = {
    "description": "hrefs, or objects with `fields`",
    "content": {
        "application/json": {"schema": {"type": "array"}},
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/markdown": {"schema": {"type": "string"}},
    },
}
LISTING_ERRORS = {
    "400": _error("invalid filter, or watch without ndjson"),
    "410": _error("the since revision is no longer in the history"),
    "422": _error("invalid query parameter"),
}


def _operation(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {**responses, **AUTH_ERRORS}, **extra}


def _body(params: dict[str, Any]) -> dict[str, Any]:
    schema = ParamsValidator(params).schema
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def _collection_paths(name: str, xo_type: str | None) -> dict[str, dict[str, Any]]:
    label = xo_type or name[:-1]
    one = f"/{name}/{{id}}"
    id_param = _path("id", f"the {label}'s id")
    params = LISTING_PARAMS + (WATCH_PARAMS if xo_type else [])
    paths: dict[str, dict[str, Any]] = {
        f"/{name}": {
            "get": _operation(
                f"list the {name}",
                {"200": LISTED, **LISTING_ERRORS},
                parameters=params,
                tags=[name],
            )
        },
        one: {
            "parameters": [id_param],
            "get": _operation(
                f"one {label}",
                {
                    "200": {"description": label, "content": JSON_ANY},
                    "404": _error(f"no such {label}"),
                },
                tags=[name],
            ),
        },
    }
    if name == "tasks":
        paths[one]["get"]["parameters"] = [
            _query(
                "wait",
                {"type": "string", "enum": ["true", "false", "result"]},
                "wait until the task has finished",
            )
        ]
    if xo_type in PATCH_METHODS:
        paths[one]["patch"] = _operation(
            f"rename the {label}, replace its tags",
            {"204": {"description": "changed"}, **ACTION_ERRORS},
            requestBody=_body(PATCH_BODY),
            tags=[name],
        )
    if xo_type in DELETE_METHODS:
        paths[one]["delete"] = _operation(
            f"delete the {label}", {"204": {"description": "deleted"}, **ACTION_ERRORS}, tags=[name]
        )
    if xo_type in TAGGABLE_TYPES:
        tag = _operation("", {"204": {"description": "done"}, **ACTION_ERRORS}, tags=[name])
        paths[f"{one}/tags/{{tag}}"] = {
            "parameters": [id_param, _path("tag", "the tag")],
            "put": {**tag, "summary": f"tag the {label}"},
            "delete": {**tag, "summary": f"untag the {label}"},
        }
    declared = ACTIONS.get(xo_type or "", {})
    if declared:
        paths[f"{one}/actions"] = {
            "parameters": [id_param],
            "get": _operation(
                f"the actions of a {label}",
                {
                    "200": {"description": "hrefs", "content": JSON_ANY},
                    "404": _error("no such object"),
                },
                tags=[name],
            ),
        }
    for action in declared.values():
        paths[f"{one}/actions/{action.name}"] = {
            "parameters": [id_param],
            "post": _operation(
                action.description,
                {
                    "202": {
                        "description": "started: the task",
                        "content": JSON_ANY,
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    "201": {"description": "sync: the new object", "content": JSON_ANY},
                    "204": {"description": "sync: done"},
                    **ACTION_ERRORS,
                },
                parameters=[_query("sync", FLAG, "wait for the outcome")],
                requestBody=_body(action.body),
                tags=[name],
            ),
        }
    if xo_type is not None:
        for sub in SUB_COLLECTIONS:
            if sub != "vdis" or xo_type in VM_TYPES:
                paths[f"{one}/{sub}"] = {
                    "parameters": [id_param],
                    "get": _operation(
                        f"the {label}'s {sub}",
                        {"200": LISTED, **LISTING_ERRORS, "404": _error(f"no such {label}")},
                        parameters=LISTING_PARAMS,
                        tags=[name],
                    ),
                }
    return paths


def document(version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/ping": {
            "get": {
                "summary": "is xod up",
                "security": [],
                "responses": {"200": {"description": "pong", "content": JSON_ANY}},
            }
        },
    }
    token_body = {
        "description": {"type": "string", "optional": True},
        "expiresIn": {"type": ["string", "number"], "optional": True},
        "client": {"type": "object", "properties": {"id": {"type": "string"}}, "optional": True},
    }
    paths["/users/{id}/authentication_tokens"] = {
        "parameters": [_path("id", "your user id, or me")],
        "post": _operation(
            "create an authentication token",
            {
                "201": {"description": "the token (its id is its value)", "content": JSON_ANY},
                "422": _error("invalid parameters"),
            },
            requestBody=_body(token_body),
            tags=["users"],
        ),
        "get": _operation(
            "your authentication tokens",
            {"200": {"description": "tokens", "content": JSON_ANY}},
            tags=["users"],
        ),
    }
    for name in COLLECTION_NAMES:
        paths.update(_collection_paths(name, TYPE_OF_COLLECTION.get(name)))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "xod REST API (Xen Orchestra compatible)",
            "version": version,
            "description": "Collections of the live object cache, actions run as the JSON-RPC "
            "methods, and live watches. Authenticate with the authenticationToken cookie "
            "or HTTP Basic.",
        },
        "servers": [{"url": BASE}],
        "security": [{"token": []}, {"basic": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "cookie", "name": "authenticationToken"},
                "basic": {"type": "http", "scheme": "basic"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {}, "data": {}, "info": {"type": "string"}},
                }
            },
        },
    }


def handler(document: dict[str, Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
    body = orjson.dumps(document)

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return serve
