"""Params validation (xod/api/schema.py): nothing of a call is kept (params carry passwords and
tokens), invalid params still get XO's code 10 with Ajv's `data.errors`, and the fast compiled
validator agrees with jsonschema on every method's schema."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.harness import ADMIN_EMAIL, ADMIN_PASSWORD, RpcError, connect, running_xod
from xod.api.methods import build_registry

MADE_UP_TOKEN = "0123456789made-up-token-abcdefghij"


def _strings_held(root: object) -> list[str | bytes]:
    """Every string and bytes reachable from `root` through containers and xod's own objects
    (not through modules or functions' globals, which reach everything)."""
    seen: set[int] = set()
    found: list[str | bytes] = []
    stack = [root]
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, (str, bytes)):
            found.append(value)
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend(value)
        elif type(value).__module__.startswith(("xod.", "jsonschema")):
            stack.extend(getattr(value, "__dict__", {}).values())
            for name in getattr(type(value), "__slots__", ()):
                stack.append(getattr(value, name, None))
    return found


async def test_validation_keeps_no_secret(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as client:
        # The same secrets again and again: what a memo of valid params would have kept.
        for _ in range(3):
            await client.call(
                "session.signInWithPassword", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            try:
                await client.call("session.signInWithToken", {"token": MADE_UP_TOKEN})
            except RpcError as error:
                assert error.code == 3
        held = _strings_held(app.registry)
        assert held, "the walk reached nothing"
        leaked = [s for s in held if ADMIN_PASSWORD in str(s) or MADE_UP_TOKEN in str(s)]
        assert leaked == []

        try:
            await client.call("session.signInWithPassword", {"email": ADMIN_EMAIL, "password": 123})
        except RpcError as error:
            assert error.code == 10
            assert error.data["errors"] == [
                {
                    "instancePath": "/password",
                    "schemaPath": "#/properties/password/type",
                    "keyword": "type",
                    "params": {"type": "string"},
                    "message": "must be string",
                }
            ]
        else:
            raise AssertionError("a number for a password was accepted")


async def test_integers_beyond_xapi_range_are_invalid_parameters(tmp_path: Path) -> None:
    async with running_xod(tmp_path) as app, connect(app) as client:
        await client.sign_in()
        # 2**70 arrives as a float (orjson), 2**64 - 1 as an int: both past XAPI's int64.
        cases = (("memory", 2**70), ("CPUs", 2**64 - 1), ("cpusMax", 1e300))
        for request_id, (name, value) in enumerate(cases):
            params = {"id": "any", name: value}
            call = {"id": request_id, "jsonrpc": "2.0", "method": "vm.set", "params": params}
            await client.send_raw(json.dumps(call))  # orjson does not write 2**70
            reply = await asyncio.wait_for(client.recv(), 10)
            assert reply["id"] == request_id and reply["error"]["code"] == 10, reply
            [entry] = reply["error"]["data"]["errors"]
            assert entry["instancePath"] == f"/{name}"
            assert entry["message"] == f"must be <= {2**63 - 1}"


_REGISTRY = build_registry()
_VALIDATED = [m for m in _REGISTRY.methods() if m.validator is not None]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(_VALIDATED), st.data())
def test_fast_validation_agrees_with_jsonschema(method: Any, data: st.DataObject) -> None:
    validator = method.validator
    names = sorted(validator.property_names) or ["x"]
    params = data.draw(st.dictionaries(st.sampled_from([*names, "extra"]), _JSON, max_size=4))
    problems = validator.validate(params)  # fills in defaults, as the reference sees them
    reference = jsonschema.Draft7Validator(validator.schema)
    assert bool(problems) == (not reference.is_valid(params)), (method.name, params, problems)
