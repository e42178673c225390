"""The OpenAPI 3.1 document of `/rest/v0`, generated from the same declarations the handlers
use (collections, actions and their bodies, PATCH fields, tags, deletions), so it cannot drift.
Served at `/rest/v0/docs/openapi.json` (and `swagger.json`, Xen Orchestra's name)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from xod.api.schema import ParamsValidator
from xod.api.transfers import VDI_CONTENT_TYPES
from xod.server.rest.context import BASE
from xod.server.rest.declarations import PATCH_BODY
from xod.server.rest.endpoints import ENDPOINTS, Endpoint
from xod.server.rest.transfers import COMPRESSIONS, VDI_COLLECTIONS, VM_COLLECTIONS

ERROR = {"$ref": "#/components/schemas/Error"}
JSON_ANY: dict[str, Any] = {"application/json": {"schema": {}}}
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


def _listing(summary: str, params: list[dict[str, Any]], label: str | None) -> dict[str, Any]:
    errors = {**LISTING_ERRORS, **({"404": _error(f"no such {label}")} if label else {})}
    return {"summary": summary, "parameters": params, "responses": {"200": LISTED, **errors}}


def _operation_of(endpoint: Endpoint) -> dict[str, Any]:
    """The OpenAPI operation of one endpoint (without the errors every route has)."""
    label = endpoint.xo_type or endpoint.collection[:-1]
    kind = endpoint.kind
    if kind == "list":
        params = LISTING_PARAMS + (WATCH_PARAMS if endpoint.xo_type else [])
        return _listing(f"list the {endpoint.collection}", params, None)
    if kind == "sub":
        return _listing(f"the {label}'s {endpoint.sub}", LISTING_PARAMS, label)
    if kind in ("get", "task"):
        operation: dict[str, Any] = {
            "summary": f"one {label}",
            "responses": {
                "200": {"description": label, "content": JSON_ANY},
                "404": _error(f"no such {label}"),
            },
        }
        if kind == "task":
            operation["parameters"] = [
                _query(
                    "wait",
                    {"type": "string", "enum": ["true", "false", "result"]},
                    "wait until the task has finished",
                )
            ]
        return operation
    if kind == "actions":
        return {
            "summary": f"the actions of a {label}",
            "responses": {
                "200": {"description": "hrefs", "content": JSON_ANY},
                "404": _error("no such object"),
            },
        }
    done = {"204": {"description": "done"}, **ACTION_ERRORS}
    if kind == "patch":
        return {
            "summary": f"rename the {label}, replace its tags",
            "responses": done,
            "requestBody": _body(PATCH_BODY),
        }
    if kind == "delete":
        return {"summary": f"delete the {label}", "responses": done}
    if kind == "tag":
        verb = "tag" if endpoint.method == "PUT" else "untag"
        return {"summary": f"{verb} the {label}", "responses": done}
    action = endpoint.action
    assert action is not None
    if endpoint.method == "GET":
        return {
            "summary": f"what {action.name} takes",
            "responses": {
                "200": {"description": "its body's JSON Schema", "content": JSON_ANY},
                "404": _error("no such object"),
            },
        }
    return {
        "summary": action.description,
        "parameters": [_query("sync", FLAG, "wait for the outcome")],
        "requestBody": _body(action.body),
        "responses": {
            "202": {
                "description": "started: the task",
                "content": JSON_ANY,
                "headers": {"Location": {"schema": {"type": "string"}}},
            },
            "201": {"description": "sync: the new object", "content": JSON_ANY},
            **done,
        },
    }


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        item = paths.setdefault(endpoint.path, {})
        params = [_path("id", "the object's id")] if "{id}" in endpoint.path else []
        if endpoint.kind == "tag":
            params.append(_path("tag", "the tag"))
        if params:
            item["parameters"] = params
        operation = _operation_of(endpoint)
        operation["responses"].update(AUTH_ERRORS)
        operation["tags"] = [endpoint.collection]
        item[endpoint.method.lower()] = operation
    return paths


BINARY = {"schema": {"type": "string", "format": "binary"}}
TRANSFER_ERRORS = {
    "404": _error("no such object"),
    "500": _error("the pool refused the transfer (a XAPI error)"),
    "503": _error("the pool is unreachable"),
}
IMPORT_ERRORS = {
    **TRANSFER_ERRORS,
    "400": _error("the body is not a valid image, or has no Content-Length"),
    "422": _error("invalid query parameter"),
}
IMPORTED = {
    "description": "imported: the new object's id (its href in Location)",
    "content": JSON_ANY,
    "headers": {"Location": {"schema": {"type": "string"}}},
}
UPLOAD = {"required": True, "content": {"application/octet-stream": BINARY}}


def _transfer_paths() -> dict[str, dict[str, Any]]:
    """The exports and imports (xod/server/rest/transfers.py), by path and method."""
    paths: dict[str, dict[str, Any]] = {}
    for collection in VM_COLLECTIONS:
        paths[f"/{collection}/{{id}}.xva"] = {
            "get": {
                "summary": "export as an XVA (a running VM through a snapshot of it)",
                "parameters": [
                    _query("compress", {"type": "string", "enum": COMPRESSIONS}, "gzip or zstd")
                ],
                "responses": {
                    "200": {
                        "description": "the XVA stream",
                        "content": {"application/octet-stream": BINARY},
                    },
                    "422": _error("invalid compress"),
                    **TRANSFER_ERRORS,
                },
            }
        }
    for collection in VDI_COLLECTIONS:
        paths[f"/{collection}/{{id}}.{{format}}"] = {
            "parameters": [
                {
                    **_path("format", "vhd (VHD stream) or raw (the disk's bytes)"),
                    "schema": {"type": "string", "enum": list(VDI_CONTENT_TYPES)},
                }
            ],
            "get": {
                "summary": "export the disk's content",
                "responses": {
                    "200": {
                        "description": "the disk's content",
                        "content": {kind: BINARY for kind in VDI_CONTENT_TYPES.values()},
                    },
                    "422": _error("unknown format"),
                    **TRANSFER_ERRORS,
                },
            },
        }
    paths["/srs/{id}/vdis"] = {
        "post": {
            "summary": "import a VHD (or, with raw, a raw image) into a new VDI of the SR",
            "parameters": [
                _query("raw", FLAG, "the body is a raw image, not a VHD"),
                _query("name_label", {"type": "string"}, "the new VDI's name"),
                _query("name_description", {"type": "string"}, "the new VDI's description"),
            ],
            "requestBody": UPLOAD,
            "responses": {"201": IMPORTED, **IMPORT_ERRORS},
        }
    }
    paths["/pools/{id}/vms"] = {
        "post": {
            "summary": "import an XVA as a new VM (on sr, else the pool's default SR)",
            "parameters": [_query("sr", {"type": "string"}, "the SR of the VM's disks")],
            "requestBody": UPLOAD,
            "responses": {"201": IMPORTED, **IMPORT_ERRORS},
        }
    }
    for item in paths.values():
        for method, operation in item.items():
            if method != "parameters":
                operation["responses"].update(AUTH_ERRORS)
                operation["tags"] = ["transfers"]
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
    paths.update(_paths())
    for path, item in _transfer_paths().items():
        known = paths.setdefault(path, {"parameters": [_path("id", "the object's id")]})
        known["parameters"] = known.get("parameters", []) + item.pop("parameters", [])
        known.update(item)
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
