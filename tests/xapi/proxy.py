"""A real HTTP(S) front for the simulator, for tests only: TLS termination (the simulator serves
plain HTTP) and a host that does not speak JSON-RPC (404 on /jsonrpc, like an old xapi)."""

from __future__ import annotations

import hashlib
import ssl
import subprocess
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

JSON = "application/json"


def make_self_signed_cert(directory: Path, ip: str = "127.0.0.1") -> tuple[Path, Path, str]:
    """(cert, key, sha256 fingerprint hex) of a fresh self-signed certificate for `ip`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", f"/CN={ip}", "-addext", f"subjectAltName=IP:{ip}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return cert, key, hashlib.sha256(der).hexdigest()


def server_context(certificate: tuple[Path, Path, str]) -> ssl.SSLContext:
    """A TLS server context serving `certificate` (make_self_signed_cert's)."""
    cert, key, _ = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class FrontProxy:
    """Forwards every POST to `upstream` (a simulator host URL) and relays the answer; streams
    every GET (the transfer handlers' downloads) through."""

    def __init__(
        self,
        upstream: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        speaks_jsonrpc: bool = True,
        unknown_methods: frozenset[str] = frozenset(),
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.ssl_context = ssl_context
        self.speaks_jsonrpc = speaks_jsonrpc
        self.unknown_methods = unknown_methods  # answered MESSAGE_METHOD_UNKNOWN (JSON-RPC)
        # Relayed to the pool (which runs them), answered with a body that is not JSON; once.
        self.garbled_methods: set[str] = set()
        self.requests: list[str] = []  # paths, in order
        self.methods: list[str] = []  # JSON-RPC methods, in order
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def _forward(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if request.path.startswith("/jsonrpc") and not self.speaks_jsonrpc:
            return web.Response(status=404, text="not found")
        body = await request.read()
        method = orjson.loads(body)["method"] if request.path.startswith("/jsonrpc") else ""
        self.methods.append(method)
        if method in self.unknown_methods:
            return web.Response(
                body=orjson.dumps(
                    {
                        "jsonrpc": "2.0",
                        "error": {"code": 1, "message": "MESSAGE_METHOD_UNKNOWN", "data": [method]},
                        "id": orjson.loads(body)["id"],
                    }
                ),
                headers={"Content-Type": "application/json"},
            )
        self.in_flight[method] = self.in_flight.get(method, 0) + 1
        self.max_in_flight[method] = max(self.max_in_flight.get(method, 0), self.in_flight[method])
        try:
            answer = await self._relay(request, body)
            if method in self.garbled_methods:
                self.garbled_methods.discard(method)
                return web.Response(body=b'{"jsonrpc": "2.0", "resu', content_type=JSON)
            return answer
        finally:
            self.in_flight[method] -= 1

    async def _forward_download(self, request: web.Request) -> web.StreamResponse:
        """A GET (an export) streamed through, as the upstream sends it."""
        assert self._client is not None
        self.requests.append(request.path)
        async with self._client.get(self.upstream + request.path_qs) as answer:
            response = web.StreamResponse(
                status=answer.status,
                headers={"Content-Type": answer.headers.get("Content-Type", "")},
            )
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _relay(self, request: web.Request, body: bytes) -> web.Response:
        assert self._client is not None
        async with self._client.post(
            self.upstream + request.path,
            data=body,
            headers={"Content-Type": request.headers.get("Content-Type", "")},
        ) as answer:
            body = await answer.read()
            return web.Response(
                status=answer.status,
                body=body,
                headers={"Content-Type": answer.headers.get("Content-Type", "")},
            )

    async def __aenter__(self) -> FrontProxy:
        self._client = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._forward)
        app.router.add_get("/{tail:.*}", self._forward_download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()
