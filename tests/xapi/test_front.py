"""Through a real front server: HTTPS (verification, allow_unauthorized, fingerprint pinning)
and the automatic fallback to XML-RPC for a host that answers 404 on /jsonrpc."""

from __future__ import annotations

import ssl

import pytest

from tests.xapi.proxy import FrontProxy, make_self_signed_cert, server_context
from xod.xapi.errors import TlsError


@pytest.fixture
def certificate(tmp_path):
    return make_self_signed_cert(tmp_path)


async def test_self_signed_certificate_is_rejected_by_default(sim, connect_to, certificate):
    async with FrontProxy(sim.master_url, ssl_context=server_context(certificate)) as front:
        connection = connect_to(front.url)
        with pytest.raises(TlsError):
            await connection.connect(timeout=5)
        assert connection.status == "disconnected"
        assert "certificate" in connection.last_error.lower()
        assert front.requests == []  # nothing was sent over the unverified channel


async def test_allow_unauthorized_accepts_it(sim, connect_to, certificate):
    async with FrontProxy(sim.master_url, ssl_context=server_context(certificate)) as front:
        connection = connect_to(front.url, allow_unauthorized=True)
        await connection.connect()
        assert set(await connection.call("host.get_all")) == set(sim.pool.host_refs)
        assert connection.protocol_of() == "jsonrpc"


async def test_verification_with_the_certificate_as_ca(sim, connect_to, certificate):
    client_context = ssl.create_default_context(cafile=str(certificate[0]))
    async with FrontProxy(sim.master_url, ssl_context=server_context(certificate)) as front:
        connection = connect_to(front.url, ssl_context=client_context)
        await connection.connect()
        assert connection.status == "connected"


async def test_fingerprint_pinning(sim, connect_to, certificate):
    _, _, fingerprint = certificate
    colon_form = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    async with FrontProxy(sim.master_url, ssl_context=server_context(certificate)) as front:
        pinned = connect_to(front.url, fingerprint=colon_form)
        await pinned.connect()
        assert set(await pinned.call("host.get_all")) == set(sim.pool.host_refs)

        wrong = connect_to(front.url, fingerprint="00" * 32)
        with pytest.raises(TlsError) as failure:
            await wrong.connect(timeout=5)
        assert "fingerprint" in str(failure.value)


async def test_falls_back_to_xmlrpc_and_remembers(sim, connect_to):
    async with FrontProxy(sim.master_url, speaks_jsonrpc=False) as front:
        connection = connect_to(front.url)
        await connection.connect()
        assert connection.protocol_of() == "xmlrpc"
        assert set(await connection.call("host.get_all")) == set(sim.pool.host_refs)
        await connection.call("pool.get_all")
        # Only the first request tried JSON-RPC: the choice is remembered for the host.
        assert front.requests.count("/jsonrpc") == 1
        assert front.requests[0] == "/jsonrpc"
        assert front.requests[1:] == ["/"] * (len(front.requests) - 1)


def test_bad_fingerprint_is_refused_early():
    from xod.xapi.transport import parse_fingerprint

    with pytest.raises(ValueError):
        parse_fingerprint("abcd")
    assert parse_fingerprint("sha256:" + "AB" * 32) == bytes([0xAB]) * 32
