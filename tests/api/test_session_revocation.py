"""Deleting a token or a user ends what its live connections receive at once: no `all`, no
subscription changes, and their next call is refused (not at the token's old expiry)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.harness import RpcError, connect
from tests.api.live_support import is_changes, next_message, pool_and_xod, set_vm, user_vms


def _is_all(m: object) -> bool:
    return isinstance(m, dict) and m.get("method") == "all"


def _is_live(m: object) -> bool:
    return isinstance(m, dict) and m.get("method") in ("all", "xod.changes")


async def test_deleted_token_and_user_stop_live_connections(tmp_path: Path) -> None:
    async with (
        pool_and_xod(tmp_path) as (sim, app),
        connect(app) as admin,
        connect(app) as by_token,
        connect(app) as by_password,
    ):
        await admin.sign_in()
        token = await admin.call("token.create", {"description": "for the watcher"})
        await by_token.call("session.signIn", {"token": token})
        started = await by_token.call("xod.subscribe", {"filter": {"type": "VM"}})
        await next_message(by_token, is_changes(started["subscription"]))
        await admin.call(
            "user.create", {"email": "w@x.test", "password": "pw", "permission": "read"}
        )  # sees every object (a `none` user sees only what ACLs grant)
        user = await by_password.sign_in("w@x.test", "pw")

        refs = sorted(user_vms(sim))
        set_vm(sim, refs[0], name_label="everyone sees this")
        for client in (admin, by_password):
            await next_message(client, _is_all)
        # The token's connection gets it twice: `all` and its subscription, in either order.
        kinds: set[str] = set()
        while kinds != {"all", "xod.changes"}:
            kinds.add((await next_message(by_token, _is_live))["method"])

        [record] = await admin.call("user.getAuthenticationTokens")
        await admin.call("token.delete", {"tokens": [record["id"]]})
        await admin.call("user.delete", {"id": user["id"]})

        renamed = set_vm(sim, refs[0], name_label="only the admin sees this")
        seen = await next_message(admin, _is_all)
        assert seen["params"]["items"][renamed]["name_label"] == "only the admin sees this"
        for client in (by_token, by_password):
            with pytest.raises(TimeoutError):
                await next_message(client, _is_live, timeout=0.3)
            with pytest.raises(RpcError) as raised:
                await client.call("session.getUser")
            assert raised.value.code == 2
        assert app.fanout.subscription_count() == 0
