"""Prometheus metrics and the admin dashboard's memory of one server.

Why this shape:

- One ``CollectorRegistry`` per ``Metrics`` (never the process-global default),
  so several servers started in one process keep separate numbers and never
  collide on metric names.
- What the hub and the fronts already know (sessions, users, channels,
  subscriptions, queue depth, messages published / delivered / queued) is read
  at scrape time from the node's ``Statistics`` snapshot (``cometql.observe``):
  nothing on the hot paths updates a gauge per event.
- Only what nobody else counts is counted as it happens, at a few places:
  statements by table and verb, errors by code, INSERT latency (the MySQL
  session), publish-to-delivery latency (the engine's delivery task, once per
  Deliver effect, never per subscriber), slow-consumer disconnects and the
  frames they dropped (the web front, when such a session leaves), limit
  refusals (the web front and the MySQL session, where each limit is applied;
  the hub's own refusals arrive as ``Refused`` effects through the engine).
- The dashboard's history (online users every 10 s for an hour, the message
  rate window, the last 50 errors) lives here too, in bounded deques filled by
  ``run``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import trio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .observe import LIMITS, ClusterStatistics, Dashboard, ErrorRecord, OnlineSample, Statistics

__all__ = ["Metrics"]

disable_created_metrics()  # no ``*_created`` series: they double the output and nobody graphs them

#: Seconds; INSERTs are sub-millisecond when the store is fast, seconds when the disk stalls.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

RECENT_ERRORS = 50
HISTORY_POINTS = 360  # an hour of samples ...
HISTORY_INTERVAL = 10.0  # ... taken every 10 s
RATE_WINDOW = 10  # messages per second: averaged over the last 10 one-second ticks


class Metrics:
    """The server's ``Observer``: Prometheus collectors plus the dashboard's in-memory history.

    ``snapshot`` is the node's statistics reading; it is all this class knows of the server.
    """

    def __init__(self, snapshot: Callable[[], Statistics], *, clock: Callable[[], float] = time.time) -> None:
        self.snapshot = snapshot
        self.clock = clock
        self.registry = CollectorRegistry()
        r = self.registry
        self.statements = Counter("cometql_statements", "CometQL statements run, by table and verb",
                                  ["table", "verb"], registry=r)
        self.errors = Counter("cometql_errors", "MySQL-protocol errors sent to clients, by CometQL error code",
                              ["code"], registry=r)
        self.insert_latency = Histogram("cometql_insert_duration_seconds",
                                        "Time to run one INSERT (hub, store, acknowledgement ready)",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.delivery_latency = Histogram("cometql_publish_to_delivery_seconds",
                                          "Time from the hub deciding a delivery (a publish, a user message, a "
                                          "command's reply) until the delivery task has sent the frame to every "
                                          "target", buckets=LATENCY_BUCKETS, registry=r)
        self.slow_consumers = Counter("cometql_slow_consumer_disconnects",
                                      "Browser sessions closed because their send queue went over its bound",
                                      ["transport"], registry=r)
        for transport in ("websocket", "longpoll"):
            self.slow_consumers.labels(transport)  # present (at 0) from the first scrape
        self.dropped = Counter("cometql_messages_dropped", "Frames discarded when a slow consumer was disconnected",
                               registry=r)
        self.limit_hits = Counter("cometql_limit_hits", "Requests refused by an abuse limit, by limit",
                                  ["limit"], registry=r)
        self._limit_children = {name: self.limit_hits.labels(name) for name in LIMITS}  # at 0 from the start
        r.register(_LiveCollector(snapshot))
        self._statement_children: dict[tuple[str, str], Any] = {}
        self._error_children: dict[int, Any] = {}
        self.recent_errors: deque[ErrorRecord] = deque(maxlen=RECENT_ERRORS)
        self.online_history: deque[OnlineSample] = deque(maxlen=HISTORY_POINTS)
        self._rate_window: deque[tuple[float, int, int]] = deque(maxlen=RATE_WINDOW + 1)

    # ------------------------------------------------------------ events

    def statement(self, table: str, verb: str) -> None:
        child = self._statement_children.get((table, verb))
        if child is None:
            child = self._statement_children[(table, verb)] = self.statements.labels(table, verb)
        child.inc()

    def error(self, code: int, message: str) -> None:
        child = self._error_children.get(code)
        if child is None:
            child = self._error_children[code] = self.errors.labels(str(code))
        child.inc()
        self.recent_errors.append(ErrorRecord(self.clock(), code, message))

    def limit_hit(self, limit: str) -> None:
        self._limit_children[limit].inc()

    def session_left(self, transport: str, closing: str | None, dropped: int) -> None:
        if closing is not None and closing.startswith("slow consumer"):
            self.slow_consumers.labels(transport).inc()
            if dropped:
                self.dropped.inc(dropped)

    def insert_took(self, seconds: float) -> None:
        self.insert_latency.observe(seconds)

    def delivery_took(self, seconds: float) -> None:
        self.delivery_latency.observe(seconds)

    # ----------------------------------------------------------- readers

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def dashboard(self) -> Dashboard:
        published_ps, delivered_ps = self._rates()
        return Dashboard(tuple(self.online_history), published_ps, delivered_ps, tuple(reversed(self.recent_errors)))

    # ---------------------------------------------------- dashboard history

    def _online_now(self) -> OnlineSample:
        stats = self.snapshot()
        return OnlineSample(stats.time, stats.authorized_users, stats.sessions)

    def _tick(self) -> None:
        stats = self.snapshot()
        self._rate_window.append((time.monotonic(), stats.published, stats.delivered))

    def _rates(self) -> tuple[float, float]:
        """Messages published and frames delivered per second, over the last ~10 s."""
        if not self._rate_window:
            return 0.0, 0.0
        t0, published0, delivered0 = self._rate_window[0]
        elapsed = time.monotonic() - t0
        if elapsed <= 0.05:
            return 0.0, 0.0
        stats = self.snapshot()
        return (stats.published - published0) / elapsed, (stats.delivered - delivered0) / elapsed

    async def run(self) -> None:
        """Every second: the rate window; every 10 s: one point of the online-users chart."""
        ticks_per_sample = int(HISTORY_INTERVAL)
        tick = 0
        while True:
            self._tick()
            if tick % ticks_per_sample == 0:
                self.online_history.append(self._online_now())
            tick += 1
            await trio.sleep(1.0)


class _LiveCollector(Collector):
    """Gauges and totals read from one statistics snapshot at scrape time."""

    def __init__(self, snapshot: Callable[[], Statistics]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        stats = self.snapshot()
        sessions = GaugeMetricFamily("cometql_sessions", "Live browser sessions by transport", labels=["transport"])
        by_transport = {"websocket": 0, "longpoll": 0, **stats.sessions_by_transport}
        for transport, count in sorted(by_transport.items()):
            sessions.add_metric([transport], count)
        yield sessions
        yield GaugeMetricFamily("cometql_authorized_users", "Users online with at least one authorized session",
                                value=stats.authorized_users)
        yield GaugeMetricFamily("cometql_subscriptions", "Channel subscriptions of live sessions",
                                value=stats.subscriptions)
        yield GaugeMetricFamily("cometql_channels", "Channels with at least one subscriber", value=stats.channels)
        yield GaugeMetricFamily("cometql_queue_depth", "Personal messages (users_messages) stored, not yet delivered",
                                value=stats.queued_messages)
        yield GaugeMetricFamily("cometql_mysql_connections", "Open CometQL (MySQL-protocol) connections",
                                value=stats.mysql_connections)
        yield CounterMetricFamily("cometql_mysql_connections_opened", "CometQL connections accepted",
                                  value=stats.mysql_opened)
        yield CounterMetricFamily("cometql_messages_published", "Messages published to channels",
                                  value=stats.published)
        yield CounterMetricFamily("cometql_messages_delivered", "Frames handed to browser sessions",
                                  value=stats.delivered)
        yield CounterMetricFamily("cometql_messages_queued", "User messages queued because the user was offline",
                                  value=stats.queued)
        yield GaugeMetricFamily("cometql_uptime_seconds", "Seconds since the server started", value=stats.uptime)
        if stats.canary_ok is not None:
            yield GaugeMetricFamily("cometql_canary_ok", "1 while the delivery canary's probe goes round the store, "
                                    "the bus and the delivery queue in time (see /health)", value=int(stats.canary_ok))
            if stats.canary_seconds is not None:
                yield GaugeMetricFamily("cometql_canary_seconds", "How long the last passing canary probe took",
                                        value=stats.canary_seconds)
        if stats.cluster is not None:
            yield from _cluster_metrics(stats.cluster)


def _cluster_metrics(cluster: ClusterStatistics) -> Iterator[Any]:
    up = GaugeMetricFamily("cometql_redis_up", "1 while this node's Redis connection works, by connection",
                           labels=["connection"])
    up.add_metric(["writer"], int(cluster.writer_up))
    up.add_metric(["follower"], int(cluster.follower_up))
    yield up
    outages = CounterMetricFamily("cometql_redis_outages", "Times a Redis connection was lost, by connection",
                                  labels=["connection"])
    outages.add_metric(["writer"], cluster.writer_outages)
    outages.add_metric(["follower"], cluster.follower_outages)
    yield outages
    pauses = CounterMetricFamily("cometql_cluster_pauses", "Times this node found it had been paused or starved "
                                 "past its heartbeats, by side", labels=["connection"])
    pauses.add_metric(["writer"], cluster.writer_pauses)
    pauses.add_metric(["follower"], cluster.follower_pauses)
    yield pauses
    yield GaugeMetricFamily("cometql_cluster_nodes", "Nodes of the cluster this node hears from, itself included",
                            value=cluster.nodes)
    yield GaugeMetricFamily("cometql_cluster_remote_sessions", "Browser sessions held by the other nodes",
                            value=cluster.remote_sessions)
    yield CounterMetricFamily("cometql_cluster_bus_entries", "Bus entries read (batches of records and events)",
                              value=cluster.bus_entries)
