"""What another cluster member changed in the shared state (xod/cluster/shared_state.py), taken
into account here as that member's own API call was there: a deleted user or token signs its
connections out (as xod/api/methods/user.py and token.py do), and a server added, enabled,
disabled or removed is followed or dropped by this instance's pools (as
xod/api/methods/server.py does), so that every instance competes for every pool's lease."""

from __future__ import annotations

import asyncio

from xod.api.methods.server import connect
from xod.api.services import Services
from xod.store.replicated import Change


class RemoteChanges:
    """`SharedState.on_remote_change`'s listener for one daemon's services."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._removing: set[asyncio.Task[None]] = set()  # referenced until done

    def __call__(self, changes: list[Change]) -> None:
        sessions = self.services.sessions
        for change in changes:
            if change.table == "users" and change.deleted:
                sessions.sign_out_user(change.key[0])
            elif change.table == "tokens" and change.deleted:
                sessions.sign_out_token(change.key[0])
            elif change.table == "servers":
                self._follow_server(change.key[0])

    def _follow_server(self, server_id: str) -> None:
        services = self.services
        record = services.store.servers.get(server_id)  # the newest: several changes, one look
        if record is not None and record.enabled:
            connect(services, record)  # a no-op when already followed
        elif server_id in services.pools:
            task = asyncio.ensure_future(services.pools.remove(server_id))
            self._removing.add(task)
            task.add_done_callback(self._removing.discard)
