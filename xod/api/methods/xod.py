"""xod.*: live subscriptions beyond Xen Orchestra (resumable, filtered, projected).

The connection does the work (`ctx.connection.live`, set by the WebSocket edge): a method here
only checks its params and turns store errors into API errors.
"""

from __future__ import annotations

from typing import Any

from xod.api import errors
from xod.api.context import CallContext
from xod.api.methods.xo import filter_syntax_error
from xod.api.registry import SIGNED_IN, Registry
from xod.cache.store import Gone
from xod.filters import MatcherSyntaxError

GONE_CODE = 410


def gone(error: Gone) -> errors.ApiError:
    return errors.ApiError(
        GONE_CODE,
        f"revision {error.revision} is gone: resubscribe without since",
        {"revision": error.revision, "oldest": error.oldest, "current": error.current},
    )


def _live(ctx: CallContext) -> Any:
    live = getattr(ctx.connection, "live", None)
    if live is None:
        raise errors.ApiError(0, "not implemented: live changes need a WebSocket connection")
    return live


def register(registry: Registry) -> None:
    @registry.method("xod.subscribe", permission=SIGNED_IN)
    async def subscribe(ctx: CallContext, params: dict[str, Any]) -> Any:
        live = _live(ctx)
        filter_spec = params.get("filter") or None
        try:
            # Compiled once, by the scope (only when no subscriber shares it already).
            return live.subscribe(filter_spec, params.get("fields"), params.get("since"))
        except MatcherSyntaxError as error:
            raise filter_syntax_error(error) from None
        except Gone as error:
            raise gone(error) from None

    @registry.method("xod.unsubscribe", permission=SIGNED_IN)
    async def unsubscribe(ctx: CallContext, params: dict[str, Any]) -> Any:
        if not _live(ctx).unsubscribe(params["subscription"]):
            raise errors.no_such_object(params["subscription"], "subscription")
        return True

    @registry.method("xod.setAllNotifications", permission=SIGNED_IN)
    async def set_all_notifications(ctx: CallContext, params: dict[str, Any]) -> Any:
        return _live(ctx).set_all(bool(params["enabled"]))
