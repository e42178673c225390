"""Sessions: login, logout, validity and pool-member checks, the per-originator cap.

xapi never refuses a login for being one too many: its GC drops the least-recently-active
sessions of a group beyond the cap. The simulator does it at login time, at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from xod.sim.db import Database
from xod.sim.errors import XapiFailure
from xod.sim.schema import new_record
from xod.sim.values import NULL_REF, datetime_at, new_ref, new_uuid

# last_active is refreshed at most this often (xapi: 600 s), so calls do not rewrite it.
_LAST_ACTIVE_REFRESH = 600.0


class Sessions:
    def __init__(
        self,
        db: Database,
        *,
        username: str,
        password: str,
        cap: int,
        master: Callable[[], str],
        address_of: Callable[[str], str],
    ) -> None:
        self._db = db
        self._username = username
        self._password = password
        self._cap = cap
        self._master = master
        self._address_of = address_of
        # originator -> sessions, least recently active first
        self._groups: dict[str, OrderedDict[str, None]] = {}
        self._group_of: dict[str, str] = {}
        self._refreshed: dict[str, float] = {}
        self.on_removed: list[Callable[[str], None]] = []

    @property
    def table(self) -> dict[str, dict[str, Any]]:
        return self._db.tables["session"]

    def assert_master(self, host: str, local: bool) -> None:
        master = self._master()
        if not local and host != master:
            raise XapiFailure("HOST_IS_SLAVE", self._address_of(master))

    def login(self, uname: str, password: str, originator: str, *, host: str, local: bool) -> str:
        if not local:
            self.assert_master(host, local)
            if uname != self._username or password != self._password:
                raise XapiFailure("SESSION_AUTHENTICATION_FAILED", uname, "Authentication failure")
        ref = new_ref()
        now = time.time()
        record = new_record(
            "session",
            uuid=new_uuid(),
            this_host=host,
            this_user=NULL_REF,
            last_active=datetime_at(now),
            pool=False,
            is_local_superuser=True,
            originator=originator,
            auth_user_name=uname,
            tasks=[],
        )
        self._db.insert("session", record, ref)
        self._refreshed[ref] = now
        group = self._groups.setdefault(originator, OrderedDict())
        group[ref] = None
        self._group_of[ref] = originator
        while len(group) > self._cap:
            oldest = next(iter(group))
            self.remove(oldest)
        return ref

    def check(self, ref: object, *, host: str, local: bool, slave_ok: bool = False) -> str:
        """The session ref if it may make a call on `host`; marks it active."""
        if not isinstance(ref, str) or ref not in self.table:
            raise XapiFailure("SESSION_INVALID", ref)
        if not slave_ok:
            self.assert_master(host, local)
        group = self._groups.get(self._group_of[ref])
        if group is not None:
            group.move_to_end(ref)
        now = time.time()
        if now - self._refreshed[ref] > _LAST_ACTIVE_REFRESH:
            self._refreshed[ref] = now
            self.table[ref]["last_active"] = datetime_at(now)
        return ref

    def valid(self, ref: str) -> bool:
        return ref in self.table

    def remove(self, ref: str) -> None:
        if ref not in self.table:
            return
        self._db.delete("session", ref)
        originator = self._group_of.pop(ref, "")
        group = self._groups.get(originator)
        if group is not None:
            group.pop(ref, None)
        self._refreshed.pop(ref, None)
        for callback in self.on_removed:
            callback(ref)
        # Blocked event.from / event.next of this session wake and answer SESSION_INVALID.
        self._db.wake()

    def remove_all(self) -> None:
        for ref in list(self.table):
            self.remove(ref)
