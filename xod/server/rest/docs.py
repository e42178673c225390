"""`/rest/v0/docs`: a readable page of every endpoint, rendered by xod from the OpenAPI
document (no CDN, no script): what each path does, its parameters and its answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape
from typing import Any

from aiohttp import web

from xod.server.rest.context import BASE

METHODS = ("get", "post", "put", "patch", "delete")
STYLE = """body{font:15px/1.5 system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem}
code{background:#f2f2f2;padding:0 .2em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left;vertical-align:top}
.m{font-weight:bold;text-transform:uppercase}"""


def render(document: dict[str, Any]) -> str:
    info = document["info"]
    rows = []
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            params = [*item.get("parameters", ()), *operation.get("parameters", ())]
            names = ", ".join(f"<code>{escape(p['name'])}</code>" for p in params)
            statuses = ", ".join(escape(s) for s in operation["responses"])
            rows.append(
                f"<tr><td class=m>{method}</td><td><code>{escape(BASE + path)}</code></td>"
                f"<td>{escape(operation.get('summary', ''))}</td><td>{names}</td>"
                f"<td>{statuses}</td></tr>"
            )
    return f"""<!doctype html><html lang=en><meta charset=utf-8>
<title>{escape(info["title"])}</title><style>{STYLE}</style>
<h1>{escape(info["title"])} {escape(info["version"])}</h1>
<p>{escape(info["description"])}</p>
<p>Authentication: the <code>authenticationToken</code> cookie (<code>curl -b
authenticationToken=TOKEN …</code>) or HTTP Basic. The machine-readable document is
<a href="{BASE}/docs/openapi.json">openapi.json</a>.</p>
<table><tr><th>method<th>path<th>what<th>parameters<th>answers</tr>
{"".join(rows)}
</table>
"""


def handler(document: dict[str, Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
    page = render(document)

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    return serve
