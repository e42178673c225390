"""Schemathesis hooks for tests/rest/test_openapi.py (loaded through SCHEMATHESIS_HOOKS).

A watch (`?ndjson&watch=true`) is an endless stream by design, which a request/response fuzzer
can only time out on: generated watches are sent as plain listings instead (tests/rest/
test_watch.py drives real watches)."""

from __future__ import annotations

from typing import Any

import schemathesis

NOT_WATCHING = ("false", "0", "no", "off")


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    query = case.query
    if query and "watch" in query and str(query["watch"]).lower() not in NOT_WATCHING:
        query["watch"] = "false"
