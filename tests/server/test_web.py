"""The dashboard's HTTP side without a browser: the cookie sign-in and sign-out, the WebSocket
signed in by the cookie, the origin rule, CORS for allowed origins, the page's headers."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import aiohttp
import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.api.harness import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Client,
    RpcError,
    cheap_hasher,
    connect,
    running_xod,
)
from tests.daemon.test_tls import make_certificate
from xod import config
from xod.config import ConfigError
from xod.server.app import ServerConfig, XodApp
from xod.server.listen import listen
from xod.settings import parse_origins
from xod.store import Store

ALLOWED = "https://ops.example.net"
TIMEOUT = aiohttp.ClientTimeout(total=10)


def url_of(app: XodApp) -> str:
    return f"http://127.0.0.1:{app.port}"


async def signed_in_cookie(http: aiohttp.ClientSession, app: XodApp, **body: str) -> str:
    body = body or {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    async with http.post(url_of(app) + "/signin", json=body) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["user"]["email"] == ADMIN_EMAIL
        header = response.headers["Set-Cookie"]
    attributes = {a.strip().split("=")[0].lower() for a in header.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes and "secure" not in attributes
    assert "SameSite=Strict" in header
    return header.split(";")[0].split("=", 1)[1]


def ws_url(app: XodApp) -> str:
    return f"ws://127.0.0.1:{app.port}/api/"


async def test_the_cookie_signs_the_websocket_in(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path) as app,
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
    ):
        token = await signed_in_cookie(http, app)
        cookie = {"Cookie": f"authenticationToken={token}"}
        own = {"Origin": url_of(app), **cookie}
        async with websockets.connect(ws_url(app), additional_headers=own) as ws:
            user = await Client(ws).call("session.getUser")
            assert user["email"] == ADMIN_EMAIL
        # Not from a browser (no Origin): as well.
        async with websockets.connect(ws_url(app), additional_headers=cookie) as ws:
            assert (await Client(ws).call("session.getUser"))["email"] == ADMIN_EMAIL
        # Without the cookie, nothing changes for XO clients: signed out until session.signIn.
        async with connect(app) as client:
            with pytest.raises(RpcError) as refused:
                await client.call("session.getUser")
            assert refused.value.code == 2
        # A bad cookie leaves the connection signed out, and open.
        bad = {"Cookie": "authenticationToken=not-a-token"}
        async with websockets.connect(ws_url(app), additional_headers=bad) as ws:
            client = Client(ws)
            with pytest.raises(RpcError):
                await client.call("session.getUser")
            assert (await client.sign_in())["email"] == ADMIN_EMAIL


async def test_another_origin_may_not_use_the_cookie(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path, allowed_origins=(ALLOWED,)) as app,
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
    ):
        token = await signed_in_cookie(http, app)
        cookie = f"authenticationToken={token}"
        evil = {"Origin": "https://evil.example", "Cookie": cookie}
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(ws_url(app), additional_headers=evil):
                pass
        assert refused.value.response.status_code == 403
        assert b"https://evil.example is not allowed" in refused.value.response.body
        # The same page without the cookie is any other client (token sign-in in the socket).
        async with websockets.connect(
            ws_url(app), additional_headers={"Origin": "https://evil.example"}
        ) as ws:
            assert (await Client(ws).sign_in())["email"] == ADMIN_EMAIL
        # An allowed origin may.
        allowed = {"Origin": ALLOWED, "Cookie": cookie}
        async with websockets.connect(ws_url(app), additional_headers=allowed) as ws:
            assert (await Client(ws).call("session.getUser"))["email"] == ADMIN_EMAIL
        # Writes: refused from another origin, and so not done.
        async with http.post(url_of(app) + "/signout", headers=evil) as response:
            assert response.status == 403
        async with http.get(url_of(app) + "/session", headers={"Cookie": cookie}) as response:
            assert (await response.json())["user"]["email"] == ADMIN_EMAIL


async def test_rest_writes_with_the_cookie_only_from_allowed_origins(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path, allowed_origins=(ALLOWED,)) as app,
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
    ):
        token = await signed_in_cookie(http, app)
        cookie = {"Cookie": f"authenticationToken={token}"}
        action = url_of(app) + "/rest/v0/vms/no-such-vm/actions/start"
        evil = {"Origin": "https://evil.example"}
        async with http.post(action, headers={**evil, **cookie}) as response:
            assert response.status == 403
            assert await response.json() == {"error": "origin https://evil.example is not allowed"}
        # Past the rule, REST answers itself (the VM does not exist): xod's own page, an
        # allowed origin, a client authenticating by header from anywhere.
        basic = base64.b64encode(f"{ADMIN_EMAIL}:{ADMIN_PASSWORD}".encode()).decode()
        for headers in (
            {"Origin": url_of(app), **cookie},
            {"Origin": ALLOWED, **cookie},
            {**evil, "Authorization": f"Basic {basic}"},
        ):
            async with http.post(action, headers=headers) as response:
                assert response.status == 404, (headers, await response.text())
        # Reads are left to CORS: a foreign page cannot read the answer.
        async with http.get(url_of(app) + "/rest/v0/vms", headers={**evil, **cookie}) as response:
            assert response.status == 200
            assert "Access-Control-Allow-Origin" not in response.headers


async def test_allowed_origins_get_cors_answers(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path, allowed_origins=(ALLOWED,)) as app,
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
    ):
        preflight = {
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        async with http.options(url_of(app) + "/signin", headers=preflight) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
            assert response.headers["Access-Control-Allow-Credentials"] == "true"
            assert response.headers["Access-Control-Allow-Headers"] == "content-type"
        async with http.get(url_of(app) + "/session", headers={"Origin": ALLOWED}) as response:
            assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
            assert "Origin" in response.headers["Vary"]
        other = {"Origin": "https://evil.example"}
        async with http.get(url_of(app) + "/session", headers=other) as response:
            assert "Access-Control-Allow-Origin" not in response.headers


async def test_sign_out_deletes_the_pages_token_but_not_a_pasted_one(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path) as app,
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
    ):
        token = await signed_in_cookie(http, app)
        cookie = {"Cookie": f"authenticationToken={token}"}
        async with websockets.connect(ws_url(app), additional_headers=cookie) as ws:
            client = Client(ws)
            assert (await client.call("session.getUser"))["email"] == ADMIN_EMAIL
            async with http.post(url_of(app) + "/signout", headers=cookie) as response:
                assert response.status == 200
                assert "Max-Age=0" in response.headers["Set-Cookie"]
            with pytest.raises(RpcError):  # the connection it signed in is signed out
                await client.call("session.getUser")
        assert app.store.tokens.lookup(token) is None

        async with connect(app) as admin:
            await admin.sign_in()
            pasted = await admin.call("token.create", {})
        assert await signed_in_cookie(http, app, token=pasted) == pasted
        async with http.post(
            url_of(app) + "/signout", headers={"Cookie": f"authenticationToken={pasted}"}
        ) as response:
            assert response.status == 200
        assert app.store.tokens.lookup(pasted) is not None


async def test_sign_in_errors(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path) as app,
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
    ):
        signin = url_of(app) + "/signin"
        async with http.post(signin, data=b"{not json") as response:
            assert response.status == 400
            assert await response.json() == {"error": "the body must be a JSON object"}
        wrong = {"email": ADMIN_EMAIL, "password": "wrong"}
        async with http.post(signin, json=wrong) as response:
            assert response.status == 401
            assert await response.json() == {"error": "invalid credentials"}
            assert "Set-Cookie" not in response.headers
        async with http.post(signin, json=wrong) as response:  # at once: throttled
            assert response.status == 429
            assert int(response.headers["Retry-After"]) >= 1


async def test_the_page_and_its_files_carry_the_security_headers(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path) as app,
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
    ):
        for path in ("/", "/web/app.js", "/web/vendor/preact.module.js"):
            async with http.get(url_of(app) + path) as response:
                assert response.status == 200, path
                csp = response.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
                assert "unsafe-inline" not in csp
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(url_of(app) + "/") as response:
            page = await response.text()
        assert "<script>" not in page and 'src="/web/app.js"' in page
        for path in ("/web/../server/web.py", "/web/%2e%2e/server/web.py", "/web/nothing.js"):
            async with http.get(url_of(app) + path) as response:
                assert response.status == 404, path


async def test_session_says_who_and_which_instance(tmp_path: Path) -> None:
    async with (
        running_xod(tmp_path) as app,
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
    ):
        async with http.get(url_of(app) + "/session") as response:
            anonymous = orjson.loads(await response.read())
        assert anonymous["user"] is None and anonymous["instance"] == app.dashboard.instance
        token = await signed_in_cookie(http, app)
        async with http.get(
            url_of(app) + "/session", headers={"Cookie": f"authenticationToken={token}"}
        ) as response:
            assert (await response.json())["user"]["permission"] == "admin"


async def test_the_cookie_is_secure_under_tls(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, "xod")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    state_dir = tmp_path / "state"
    app = XodApp(
        ServerConfig(
            state_dir=state_dir,
            admin_email=ADMIN_EMAIL,
            admin_password=ADMIN_PASSWORD,
            store=Store.open(state_dir, cheap_hasher()),
        )
    )
    app.first_start(print_to=None)
    app.startup()
    listener = await listen(app.app, "127.0.0.1", 0, ssl_context=server_tls)
    try:
        client_tls = ssl.create_default_context(cafile=str(cert))
        credentials = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.post(
                f"https://127.0.0.1:{listener.port}/signin", json=credentials, ssl=client_tls
            ) as response,
        ):
            assert response.status == 200
            attributes = [a.strip() for a in response.headers["Set-Cookie"].split(";")]
        assert "Secure" in attributes and "HttpOnly" in attributes
    finally:
        await listener.close()
        await app.stop()


def test_allowed_origins_must_be_origins() -> None:
    loaded = config.load(
        path=None, environ={}, overrides={"http.allowed_origins": f"{ALLOWED}, http://a:8080"}
    )
    assert parse_origins(loaded.http.allowed_origins) == (ALLOWED, "http://a:8080")
    with pytest.raises(ConfigError, match=r"is not an origin"):
        config.load(path=None, environ={}, overrides={"http.allowed_origins": ALLOWED + "/path"})
