"""A type-pinned `xod.subscribe` scans only its candidate types' objects, and its snapshot is
exactly what the full scan (`xo.getAllObjects` with the same filter) selects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.harness import connect
from tests.api.live_support import is_changes, next_message, pool_and_xod
from xod.api.subscriptions import compile_projection
from xod.server.changes import CHUNK_OBJECTS

FILTERS: list[Any] = [
    "type:/^VM$/",
    "type:VM",  # a substring: VM-template, VM-snapshot and VM-controller too
    'type:"VM"',
    "type:/^VM$/ (power_state:Running)",
    "name_label:a (type:VM !type:template)",
    "|(type:host type:pool)",
    "type:/^(pool|host|SR|task|message)$/",
    "!type:VM",
    "type:nothing-has-this-type",
    {"type": "VM", "power_state": "Halted"},
]
FIELDS = ["name_label", "power_state", "$container", "CPUs.number", "memory.size"]


async def _snapshot(client: Any, subscription: str) -> dict[str, Any]:
    message = await next_message(client, is_changes(subscription))
    assert len(message["params"]["enter"]) < CHUNK_OBJECTS  # one frame holds it all
    return dict(message["params"]["enter"])


async def test_type_pinned_snapshots_equal_the_full_scan(tmp_path: Path) -> None:
    async with pool_and_xod(tmp_path, vms=12) as (_sim, app), connect(app) as client:
        await client.sign_in()
        await client.call("xod.setAllNotifications", {"enabled": False})
        types = {obj["type"] for obj in app.objects.objects.values()}
        assert {"VM", "VM-template", "VM-controller", "host", "pool"} <= types
        project = compile_projection(FIELDS)
        assert project is not None
        for filter_spec in FILTERS:
            expected = await client.call("xo.getAllObjects", {"filter": filter_spec})
            whole = await client.call("xod.subscribe", {"filter": filter_spec})
            assert await _snapshot(client, whole["subscription"]) == expected, filter_spec
            projected = await client.call(
                "xod.subscribe", {"filter": filter_spec, "fields": FIELDS}
            )
            snapshot = await _snapshot(client, projected["subscription"])
            assert snapshot == {i: project(o) for i, o in expected.items()}, filter_spec
        # The substring match reaches past "VM" itself.
        templates = await client.call("xo.getAllObjects", {"filter": "type:VM-template"})
        assert templates
        vm_like = await client.call("xo.getAllObjects", {"filter": "type:VM"})
        assert set(templates) < set(vm_like)
