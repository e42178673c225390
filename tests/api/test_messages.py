"""XAPI messages (alerts, notices) as XO `message` objects: in the cache, in `xo.getAllObjects`
and in `all` notifications as they come and go; `message.delete` removes one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.harness import RpcError, connect
from tests.api.live_support import next_message
from tests.api.test_commands_support import commands_env
from xod.sim.schema import new_record
from xod.sim.values import new_uuid, now


def _is_all(kind: str, object_id: str) -> Any:
    return lambda m: (
        isinstance(m, dict)
        and m.get("method") == "all"
        and m["params"]["type"] == kind
        and object_id in m["params"]["items"]
    )


async def test_messages_come_and_go(tmp_path: Path) -> None:
    async with commands_env(tmp_path) as env, connect(env.app) as watcher:
        await watcher.sign_in()
        vm = await env.vm_in_state("Running")
        pool_id = next(iter(await env.objects({"type": "pool"})))
        body = 'value: <variable name="cpu_usage" value="0.97"/>'
        record = new_record(
            "message",
            uuid=new_uuid(),
            name="ALARM",
            priority=3,
            cls="VM",
            obj_uuid=vm["id"],
            timestamp=now(),
            body=body,
        )
        env.sim.pool.db.insert("message", record)
        message_id = record["uuid"]

        entered = await next_message(watcher, _is_all("enter", message_id))
        message = entered["params"]["items"][message_id]
        assert {k: message[k] for k in ("type", "name", "body", "$object", "$pool", "uuid")} == {
            "type": "message",
            "name": "ALARM",
            "body": body,
            "$object": vm["id"],
            "$pool": pool_id,
            "uuid": message_id,
        }
        assert isinstance(message["time"], int) and message["time"] > 0
        listed = await env.objects({"type": "message", "$object": vm["id"]})
        assert listed == {message_id: message}

        assert await env.client.call("message.delete", {"id": message_id}) is True
        assert await env.object(message_id) is None  # gone for the connection that deleted it
        assert env.sim_count("message", uuid=message_id) == 0
        exited = await next_message(watcher, _is_all("exit", message_id))
        assert exited["params"]["items"] == {message_id: 0}

        for params, code in (
            ({"id": message_id}, 1),
            ({"id": vm["id"]}, 1),
            ({}, 10),
            ({"id": message_id, "all": True}, 10),
        ):
            with pytest.raises(RpcError) as raised:
                await env.client.call("message.delete", params)
            assert raised.value.code == code, params
