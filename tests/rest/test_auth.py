"""Who may call /rest/v0: token cookies, Basic, the errors of Xen Orchestra, permission levels,
and token creation."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.rest.helpers import rest_lab


def basic(email: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


async def test_credentials_accepted_and_refused(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        hrefs = await lab.get_json("/vms")
        assert hrefs and all(h.startswith("/rest/v0/vms/") for h in hrefs)
        # The `token` cookie is accepted too.
        response = await lab.request(
            "GET", "/vms", token="", headers={"Cookie": f"token={lab.token}"}
        )
        assert response.status == 200 and await response.json() == hrefs
        response = await lab.request(
            "GET", "/vms", token="", headers=basic(ADMIN_EMAIL, ADMIN_PASSWORD)
        )
        assert response.status == 200 and await response.json() == hrefs

        for headers in (
            {},
            {"Cookie": "authenticationToken=not-a-token"},
            basic(ADMIN_EMAIL, "wrong"),
            {"Authorization": "Basic !!!"},
        ):
            response = await lab.request("GET", "/vms", token="", headers=headers)
            assert response.status == 401, headers
            assert response.headers["WWW-Authenticate"] == 'Basic realm="xo"'
            assert await response.json() == {"error": "invalid credentials"}

        response = await lab.request(
            "GET",
            "/vms",
            headers=basic(ADMIN_EMAIL, ADMIN_PASSWORD)
            | {"Cookie": f"authenticationToken={lab.token}"},
        )
        assert response.status == 400
        assert "multiple authentication methods" in (await response.json())["error"]
        response = await lab.request("GET", "/vms", token="", headers={"Authorization": "Basic"})
        assert response.status == 400
        assert await response.json() == {"error": "Malformed Authorization header"}


async def test_public_routes_need_no_credentials(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        response = await lab.request("GET", "/ping", token="")
        body = await response.json()
        assert response.status == 200 and body["result"] == "pong" and body["timestamp"] > 0
        response = await lab.request("GET", "", token="")
        assert response.status == 302 and response.headers["Location"] == "/rest/v0/docs"


async def test_permission_levels_as_in_json_rpc(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        await lab.rpc.call(
            "user.create", {"email": "reader@x", "password": "pw-reader", "permission": "read"}
        )
        reader = basic("reader@x", "pw-reader")
        vm_id = (await lab.vm_ids())[0]
        response = await lab.request("GET", f"/vms/{vm_id}", token="", headers=reader)
        assert response.status == 200
        before = await response.json()
        response = await lab.request(
            "POST", f"/vms/{vm_id}/actions/pause?sync=true", token="", headers=reader
        )
        assert response.status == 403
        assert (await response.json())["error"] == "not enough permissions"
        response = await lab.request(
            "PATCH", f"/vms/{vm_id}", token="", headers=reader, json={"name_label": "nope"}
        )
        assert response.status == 403
        assert (await lab.get_json(f"/vms/{vm_id}"))["name_label"] == before["name_label"]
        # Users and servers are admin-only, as user.getAll and server.getAll are.
        for path in ("/users", "/servers"):
            response = await lab.request("GET", path, token="", headers=reader)
            assert response.status == 403, path


async def test_token_creation(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        body = {"client": {"id": "my-client"}, "description": "ci", "expiresIn": "1 hour"}
        response = await lab.request("POST", "/users/me/authentication_tokens", json=body)
        assert response.status == 201
        first = (await response.json())["token"]
        assert first["client"] == {"id": "my-client"} and first["description"] == "ci"
        assert first["expiration"] - first["created_at"] <= 3_600_000 + 1000
        user = await lab.rpc.call("session.getUser")
        assert first["user_id"] == user["id"]
        # The token's id is its value: it authenticates.
        assert await lab.get_json("/pools", token=first["id"])
        # The same client id reuses its record (a fresh value, the old one stops working).
        response = await lab.request(
            "POST", f"/users/{user['id']}/authentication_tokens", json=body
        )
        second = (await response.json())["token"]
        assert response.status == 201 and second["record_id"] == first["record_id"]
        assert (await lab.request("GET", "/pools", token=first["id"])).status == 401
        listed = await lab.get_json("/users/me/authentication_tokens")
        assert [t["id"] for t in listed].count(second["record_id"]) == 1
        # Another user's tokens: 403.
        response = await lab.request("POST", "/users/someone-else/authentication_tokens")
        assert response.status == 403
        response = await lab.request(
            "POST", "/users/me/authentication_tokens", json={"expiresIn": "1 ms"}
        )
        assert response.status == 422
        response = await lab.request("POST", "/users/me/authentication_tokens", data=b"[1]")
        assert response.status == 422
        # The deprecated route, with Basic as its legacy clients send it.
        response = await lab.request(
            "POST",
            "/users/authentication_tokens",
            token="",
            headers=basic(ADMIN_EMAIL, ADMIN_PASSWORD),
        )
        assert response.status == 201
        assert await lab.get_json("/pools", token=(await response.json())["token"]["id"])


async def test_basic_password_with_a_colon(tmp_path: Path) -> None:
    async with rest_lab(tmp_path) as lab:
        await lab.rpc.call(
            "user.create", {"email": "colon@x", "password": "a:b:c", "permission": "read"}
        )
        response = await lab.request("GET", "/pools", token="", headers=basic("colon@x", "a:b:c"))
        assert response.status == 200
