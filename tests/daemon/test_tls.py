"""HTTPS/WSS with a configured certificate, and a new certificate picked up on SIGHUP."""

from __future__ import annotations

import signal
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
import websockets

from tests.daemon.helpers import XodProcess


def make_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def peer_common_name(port: int, trusted: Path) -> str:
    context = ssl.create_default_context(cafile=str(trusted))
    import socket

    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        subject = dict(item[0] for item in tls.getpeercert()["subject"])  # type: ignore[misc]  # typeshed: any field
    return subject["commonName"]


async def test_https_wss_and_certificate_reload(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, "first")
    live_cert, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    live_cert.write_bytes(cert.read_bytes())
    live_key.write_bytes(key.read_bytes())
    xod = XodProcess(
        ["--listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "s"),
         "--tls-cert", str(live_cert), "--tls-key", str(live_key)],
        tmp_path,
    )  # fmt: skip
    try:
        url = xod.url()
        assert url.startswith("https://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/healthz", ssl=context) as response:
                assert response.status == 200
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    await response.read()
        async with websockets.connect(f"wss://127.0.0.1:{port}/api/", ssl=context) as ws:
            await ws.send('{"jsonrpc":"2.0","id":1,"method":"session.getUser","params":{}}')
            assert '"id":1' in await ws.recv()
            assert peer_common_name(port, cert) == "first"

            second_cert, second_key = make_certificate(tmp_path, "second")
            live_cert.write_bytes(second_cert.read_bytes())
            live_key.write_bytes(second_key.read_bytes())
            xod.signal(signal.SIGHUP)
            xod.wait_log("configuration reloaded")
            assert peer_common_name(port, second_cert) == "second"
            # The connection opened with the old certificate is still served.
            await ws.send('{"jsonrpc":"2.0","id":2,"method":"session.getUser","params":{}}')
            assert '"id":2' in await ws.recv()
    finally:
        xod.stop()
