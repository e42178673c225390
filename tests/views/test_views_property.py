"""Property: for random ACL sets and random churn (objects created, changed, relinked and
removed straight through the cache store; ACLs added and removed by an admin over JSON-RPC),
what each user's socket received — its `all` notifications over its getAllObjects answer, and
its subscription's snapshot and changes — replayed, equals the permitted subset of the cache."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import websockets
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.api.harness import Client, connect, running_xod
from tests.views.support import PASSWORD, add_user, grant, permitted, revoke
from xod.server.app import XodApp

POOL = "P"
HOSTS = ("H0", "H1")
SRS = ("S0", "S1")  # S0 shared (on the pool), S1 local to H0
VMS = ("V0", "V1", "V2", "V3")
VDIS = ("D0", "D1", "D2")
GRANTABLE = (POOL, *HOSTS, *SRS, *VMS, "N0")
CONTAINERS = (POOL, *HOSTS)
ROLES = ("viewer", "operator", "admin")
USERS = 3


def _initial() -> dict[str, dict[str, Any]]:
    objects: list[dict[str, Any]] = [
        {"id": POOL, "type": "pool", "$pool": POOL},
        {"id": "N0", "type": "network", "$pool": POOL},
        {"id": "S0", "type": "SR", "$container": POOL},
        {"id": "S1", "type": "SR", "$container": "H0"},
        *({"id": h, "type": "host", "$pool": POOL} for h in HOSTS),
    ]
    for i, vm in enumerate(VMS):
        objects.append({"id": vm, "type": "VM", "$container": CONTAINERS[i % 3], "$pool": POOL})
        objects.append({"id": f"F{i}", "type": "VIF", "$VM": vm, "$network": "N0"})
    for i, vdi in enumerate(VDIS):
        objects.append({"id": f"B{i}", "type": "VBD", "VDI": vdi, "VM": VMS[i]})
        objects.append({"id": vdi, "type": "VDI", "$SR": SRS[i % 2], "$VBDs": [f"B{i}"]})
    for obj in objects:
        obj.setdefault("$pool", POOL)
        obj["name_label"] = obj["id"]
    return {o["id"]: o for o in objects}


INITIAL_IDS = tuple(_initial())
users = st.integers(0, USERS - 1)
acl = st.tuples(users, st.sampled_from(GRANTABLE), st.sampled_from(ROLES))
operation = st.one_of(
    st.tuples(st.just("rename"), st.sampled_from(INITIAL_IDS)),
    st.tuples(st.just("move"), st.sampled_from(VMS), st.sampled_from(CONTAINERS)),
    st.tuples(st.just("attach"), st.sampled_from(VDIS), st.sampled_from(VMS)),
    st.tuples(st.just("attach_vdi_first"), st.sampled_from(VDIS), st.sampled_from(VMS)),
    st.tuples(st.just("store_sr"), st.sampled_from(VDIS), st.sampled_from(SRS)),
    st.tuples(st.just("remove"), st.sampled_from((*VMS, "H1", "S1", "B0", "F1"))),
    st.tuples(st.just("add_vm"), st.sampled_from(CONTAINERS)),
    st.tuples(st.just("grant"), acl),
    st.tuples(st.just("revoke"), acl),
)


class Recorder:
    """A user's socket read by one task: replies matched by id, notifications replayed."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.replies: dict[int, asyncio.Future[Any]] = {}
        self.all_view: dict[str, Any] | None = None  # set from the first getAllObjects
        self.sub_view: dict[str, Any] = {}
        self.ids = itertools.count(1)
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in self.client.ws:
                message = orjson.loads(frame)
                if "id" in message and message["id"] in self.replies:
                    self.replies.pop(message["id"]).set_result(message)
                elif message.get("method") == "all":
                    self._replay_all(message["params"])
                elif message.get("method") == "xod.changes":
                    params = message["params"]  # the one subscription's
                    self.sub_view.update(params["enter"])
                    for object_id in params["exit"]:
                        self.sub_view.pop(object_id, None)

    def _replay_all(self, params: dict[str, Any]) -> None:
        assert self.all_view is not None, "`all` before the first getAllObjects answer"
        if params["type"] == "enter":
            self.all_view.update(params["items"])
        else:
            for object_id in params["items"]:
                self.all_view.pop(object_id, None)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        request_id = next(self.ids)
        reply = self.replies[request_id] = asyncio.get_running_loop().create_future()
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        await self.client.ws.send(orjson.dumps(message).decode())
        async with asyncio.timeout(10):  # the reply to `method`
            answer = await reply
        assert "error" not in answer, answer
        return answer["result"]


def _present(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The object a churn step changes (each step checks it is there first)."""
    assert obj is not None
    return obj


def _apply(store_objects: dict[str, dict[str, Any]], app: XodApp, op: tuple[Any, ...]) -> None:
    """One churn step straight through the cache store (one batch)."""
    changes: dict[str, Any] = {}
    current = app.objects.get
    kind = op[0]
    if kind == "rename" and current(op[1]) is not None:
        changes[op[1]] = {
            **_present(current(op[1])),
            "name_label": current(op[1])["name_label"] + "'",
        }
    elif kind == "move" and current(op[1]) is not None:
        changes[op[1]] = {**_present(current(op[1])), "$container": op[2]}
    elif kind == "attach" and current(op[1]) is not None:
        vbd = f"B{len(store_objects)}"
        store_objects[vbd] = {}
        changes[vbd] = {"id": vbd, "type": "VBD", "VDI": op[1], "VM": op[2], "$pool": POOL}
        vdi = _present(current(op[1]))
        changes[op[1]] = {**vdi, "$VBDs": [*vdi["$VBDs"], vbd]}
    elif kind == "attach_vdi_first" and current(op[1]) is not None:
        # The VDI names its new VBD one batch before the VBD exists.
        vbd = f"B{len(store_objects)}"
        store_objects[vbd] = {}
        vdi = _present(current(op[1]))
        app.objects.apply(POOL, {op[1]: {**vdi, "$VBDs": [*vdi["$VBDs"], vbd]}})
        changes[vbd] = {"id": vbd, "type": "VBD", "VDI": op[1], "VM": op[2], "$pool": POOL}
    elif kind == "store_sr" and current(op[1]) is not None:
        changes[op[1]] = {**_present(current(op[1])), "$SR": op[2]}
    elif kind == "remove":
        changes[op[1]] = None
    elif kind == "add_vm":
        vm = f"V{len(store_objects)}"
        store_objects[vm] = {}
        changes[vm] = {"id": vm, "type": "VM", "$container": op[1], "$pool": POOL}
    if changes:
        app.objects.apply(POOL, changes)


@contextlib.asynccontextmanager
async def _lab() -> AsyncIterator[tuple[XodApp, Client, list[str]]]:
    with tempfile.TemporaryDirectory() as state_dir:
        async with running_xod(Path(state_dir)) as app, connect(app) as admin:
            await admin.sign_in()
            user_ids = [await add_user(admin, f"u{i}@example.test") for i in range(USERS)]
            yield app, admin, user_ids


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(initial_acls=st.lists(acl, max_size=5), churn=st.lists(operation, max_size=12))
# A disk attached (VDI first, its VBD a batch later) to a VM the user sees through its host,
# then the VM leaves the host: the disk must leave with it.
@example(
    initial_acls=[(0, "H1", "viewer")],
    churn=[("attach_vdi_first", "D0", "V2"), ("move", "V2", "H0")],
)
async def test_what_each_socket_received_is_the_permitted_cache(
    initial_acls: list[tuple[int, str, str]], churn: list[tuple[Any, ...]]
) -> None:
    async with _lab() as (app, admin, user_ids):
        objects = _initial()
        app.objects.apply(POOL, dict(objects))
        for user, object_id, role in initial_acls:
            await grant(app, admin, user_ids[user], object_id, role)
        async with contextlib.AsyncExitStack() as stack:
            recorders = []
            for i in range(USERS):
                client = await stack.enter_async_context(connect(app))
                recorder = Recorder(client)
                await recorder.call(
                    "session.signIn", {"email": f"u{i}@example.test", "password": PASSWORD}
                )
                recorder.all_view = dict(await recorder.call("xo.getAllObjects"))
                await recorder.call("xod.subscribe", {})
                recorders.append(recorder)
            for op in churn:
                if op[0] in ("grant", "revoke"):
                    user, object_id, role = op[1]
                    change = grant if op[0] == "grant" else revoke
                    await change(app, admin, user_ids[user], object_id, role)
                else:
                    _apply(objects, app, op)
                await asyncio.sleep(0)
            for recorder, user_id in zip(recorders, user_ids, strict=True):
                # Answered after every notification already queued for this socket.
                final = await recorder.call("xo.getAllObjects")
                expected = {i: app.objects.get(i) for i in permitted(app, user_id)}
                assert final == expected
                assert recorder.all_view == expected
                assert recorder.sub_view == expected
                recorder.reader.cancel()
