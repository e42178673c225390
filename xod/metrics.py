"""Prometheus metrics (prometheus_client): the metric definitions, the collectors read at scrape
time, and the functions that observe events. The HTTP endpoints serving them are in
xod/server/health.py; the pool connection that counts event batches is
xod/server/instrumented.py.

The metric objects below are module-level so any module can update them
(`metrics.SLOW_CLIENTS_CLOSED.inc()`); they live in xod's own `REGISTRY`, not prometheus_client's
global one. Values that are already kept elsewhere (objects in the cache, pool connection states)
are read at scrape time by `StateCollector` instead of being mirrored on every change: no cost on
the hot path. The WebSocket output counters are plain integers (`WS_OUTPUT`, bumped for every
frame written) exposed as counters at scrape time: a prometheus Counter's `inc()` costs ~0.6 µs,
too much for one frame written to each of 10k clients.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # read only: metrics import nothing of xod at run time
    from xod.cache.pools import PoolManager
    from xod.cache.store import ChangeBatch, ObjectStore

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# -- updated by the API / WebSocket layer ------------------------------------------------------


class WebSocketOutput:
    """Frames and bytes written to WebSocket clients (xod/server/peer.py counts them)."""

    __slots__ = ("bytes", "frames")

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0


WS_OUTPUT = WebSocketOutput()


class _OutputCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        frames = CounterMetricFamily("xod_frames_sent", "WebSocket frames sent to clients")
        frames.add_metric([], WS_OUTPUT.frames)
        yield frames
        sent = CounterMetricFamily("xod_bytes_sent", "bytes of WebSocket frames sent")
        sent.add_metric([], WS_OUTPUT.bytes)
        yield sent


REGISTRY.register(_OutputCollector())
SLOW_CLIENTS_CLOSED = Counter(
    "xod_slow_clients_closed",
    "clients disconnected with 4008 for falling behind (output over limits.client_buffer_bytes,"
    " or behind for too long)",
    registry=REGISTRY,
)
RPC_CALLS = Counter(
    "xod_rpc_calls",
    "JSON-RPC calls by method and outcome",
    ["method", "outcome"],
    registry=REGISTRY,
)
RPC_DURATION = Histogram(
    "xod_rpc_duration_seconds",
    "JSON-RPC call latency by method",
    ["method"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)

# -- updated by the event stream (xod/server/instrumented.py) and the cache listener ----------
EVENT_BATCHES = Counter(
    "xod_event_batches", "event.from replies received", ["server"], registry=REGISTRY
)
EVENTS = Counter("xod_events", "XAPI events received", ["server"], registry=REGISTRY)
EVENT_BATCH_LAG = Histogram(
    "xod_event_batch_lag_seconds",
    "time from an event.from reply's arrival until it is applied to the cache"
    " (until xod asks for the next batch)",
    ["server"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
CACHE_BATCHES = Counter(
    "xod_cache_batches", "change batches applied to the object cache", ["pool"], registry=REGISTRY
)
CACHE_CHANGES = Counter(
    "xod_cache_changes", "objects entered or exited the object cache", ["pool"], registry=REGISTRY
)
CONFIG_RELOADS = Counter(
    "xod_config_reloads", "SIGHUP reloads by outcome", ["outcome"], registry=REGISTRY
)


def observe_rpc(method: str, outcome: str, seconds: float) -> None:
    """One JSON-RPC call: outcome is "success" or the error's name/code."""
    RPC_CALLS.labels(method, outcome).inc()
    RPC_DURATION.labels(method).observe(seconds)


def count_cache_batch(batch: ChangeBatch) -> None:
    """An ObjectStore listener (`store.subscribe(count_cache_batch)`)."""
    pool = batch.pool_id or ""
    CACHE_BATCHES.labels(pool).inc()
    CACHE_CHANGES.labels(pool).inc(len(batch))


def observe_event_batch(server: str, events: int) -> None:
    """One event.from reply of `server`, carrying `events` events."""
    EVENT_BATCHES.labels(server).inc()
    EVENTS.labels(server).inc(events)


def observe_event_lag(server: str, seconds: float) -> None:
    """How long one event.from reply of `server` took to be applied."""
    EVENT_BATCH_LAG.labels(server).observe(seconds)


# The fan-out's figures (xod/server/fanout.py `stats()`) published at scrape time: name, kind,
# help. Views are the per-user views of the cache: users with equal grants share one, and a
# change batch is encoded once per view it touches (`all` frames, subscription frames).
FANOUT_METRICS = {
    "connections": ("xod_clients_connected", "gauge", "WebSocket clients connected"),
    "subscriptions": ("xod_subscriptions", "gauge", "xod.subscribe subscriptions open"),
    "views": ("xod_views", "gauge", "distinct views of non-admin users' connections"),
    "view_connections": ("xod_view_connections", "gauge", "connections served through a view"),
    "views_lingering": (
        "xod_views_lingering", "gauge", "views kept a while after their last connection left"
    ),
    "view_batches": ("xod_view_batches", "counter", "change batches delivered to a view"),
    "view_encodes": ("xod_view_all_encodes", "counter", "`all` frames encoded for a view"),
    "view_scope_encodes": (
        "xod_view_subscription_encodes", "counter", "subscription frames encoded for a view"
    ),
}  # fmt: skip


class StateCollector(Collector):
    """Objects per type and pool, every pool connection's state, the connected clients and the
    fan-out's views, read at scrape time."""

    def __init__(
        self,
        objects: ObjectStore,
        pools: PoolManager,
        fanout: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.objects = objects
        self.pools = pools
        self.fanout = fanout

    def describe(self) -> Iterable[Metric]:
        return []  # dynamic label sets: no fixed description

    def collect(self) -> Iterator[Metric]:
        objects = GaugeMetricFamily(
            "xod_objects", "objects in the cache by type and pool", labels=["type", "pool"]
        )
        for pool_id in self.objects.pools():
            by_type = Tally(obj.get("type", "") for obj in self.objects.by_pool(pool_id).values())
            for object_type, count in sorted(by_type.items()):
                objects.add_metric([object_type, pool_id], count)
        yield objects
        revision = GaugeMetricFamily("xod_cache_revision", "the object cache's revision")
        revision.add_metric([], self.objects.revision)
        yield revision
        connected = GaugeMetricFamily(
            "xod_pool_connected",
            "1 if xod's XAPI session to the pool is up",
            labels=["server", "pool"],
        )
        synced = GaugeMetricFamily(
            "xod_pool_synced", "1 if the pool's objects are in the cache", labels=["server", "pool"]
        )
        for status in self.pools.statuses():
            labels = [status.server_id, status.pool_id or ""]
            connected.add_metric(labels, 1.0 if status.status == "connected" else 0.0)
            synced.add_metric(labels, 1.0 if status.synced else 0.0)
        yield connected
        yield synced
        stats = self.fanout() if self.fanout else {}
        for key, (name, kind, documentation) in FANOUT_METRICS.items():
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            yield family(name, documentation, value=stats.get(key, 0))
