"""The daemon-wide state every method handler may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from xod import __version__
from xod.api.access import Access
from xod.api.oneshot import OneShotUrls
from xod.api.sessions import SessionIndex, SignInGate
from xod.cache.pools import PoolManager
from xod.cache.store import ObjectStore
from xod.store import SignInThrottle, Store

DEFAULT_FAILOVER_TIMEOUT = 60.0

T = TypeVar("T")


@dataclass
class Services:
    """The daemon-wide state every handler may use."""

    store: Store
    objects: ObjectStore
    pools: PoolManager
    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    oneshot: OneShotUrls = field(default_factory=OneShotUrls)
    sign_in_gate: SignInGate = field(default_factory=SignInGate)
    sessions: SessionIndex = field(default_factory=SessionIndex)
    version: str = __version__
    connect_timeout: float = 20.0
    connection_options: dict[str, Any] = field(default_factory=dict)
    # How long an action waits for a pool's (new) master before failing.
    failover_timeout: float = DEFAULT_FAILOVER_TIMEOUT
    # THE permission check (made from `store` and `objects`).
    access: Access = field(init=False)
    # Daemon-wide state of the modules above this one, by type (see `state`).
    _states: dict[type, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.access = Access(self.store, self.objects)

    def state(self, kind: type[T], make: Callable[[], T]) -> T:
        """The daemon's one `kind` (made by `make` on first use): how a module above this one
        keeps its daemon-wide state here without this module knowing it (e.g. the actions'
        Commands, xod/api/jobs.py)."""
        value = self._states.get(kind)
        if value is None:
            value = self._states[kind] = make()
        return value
