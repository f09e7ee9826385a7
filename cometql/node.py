"""A node: the hub, the engine, the store, the cluster link and the observer of one server process.

Everything a front needs from the server is here, built once in dependency
order by ``open_node`` and never changed afterwards: fronts receive the node
and a frozen slice of options through their constructors. The node imports no
front (the fronts import it), so the package graph has no cycle.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from .canary import Canary
from .cluster import Bus, Cluster, open_bus
from .config import Config
from .engine import Engine
from .hub import ConnInfo, Hub, QueuedMessage, Record
from .metrics import Metrics
from .observe import NULL_OBSERVER, ClusterStatistics, MysqlCounters, Observer, Statistics
from .redisurl import RedisAddress
from .sampler import NO_SAMPLING, Sampler, Sampling
from .store import MemoryStats, StatsStore, Store, open_redis_stats, open_sqlite_stats, open_sqlite_store

__all__ = ["Node", "open_node"]


class Node:
    """What one server process runs on; the fronts share it.

    The node builds its engine and observer itself: the observer reads the
    node's ``statistics``, and the engine reports to the observer.
    """

    def __init__(self, hub: Hub, store: Store, cluster: Cluster | None = None, *, metrics: bool = True,
                 clock: Callable[[], float] = time.time, canary_interval: float = 0.0,
                 canary_timeout: float = 5.0, stats: StatsStore | None = None,
                 sampling: Sampling = NO_SAMPLING) -> None:
        self.hub = hub
        self.store = store
        self.cluster = cluster
        self.clock = clock
        #: Where stats_history is kept (``read_stats`` answers its SELECTs), and who writes it.
        self.stats: StatsStore = MemoryStats() if stats is None else stats
        self.sampler = Sampler(hub, self.stats, sampling, clock=clock)
        #: The MySQL port's counters (the MySQL front writes them, the snapshot reads them).
        self.mysql = MysqlCounters()
        self.observer: Observer = Metrics(self.statistics, clock=clock) if metrics else NULL_OBSERVER
        self.engine = Engine(hub, store, observer=self.observer, clock=clock)
        #: Health that proves delivery (``/health``); disabled (always healthy) with interval 0.
        self.canary = Canary(self.engine, store, cluster, interval=canary_interval, timeout=canary_timeout)

    def now(self) -> int:
        return self.engine.now()

    def statistics(self) -> Statistics:
        """One reading of everything SHOW STATUS, /admin/stats and /metrics report."""
        hub = self.hub
        engine = self.engine
        stats = hub.statistics()
        now = self.clock()
        return Statistics(
            time=now,
            uptime=max(0.0, now - engine.started),
            sessions=stats.sessions,
            count_by_transport=hub.sessions_by_transport,
            authorized_users=stats.authorized_users,
            channels=stats.channels,
            subscriptions=stats.subscriptions,
            queued_messages=stats.queued_messages,
            published=stats.published,
            delivered=engine.delivered,
            queued=stats.queued,
            mysql_connections=sum(self.mysql.online_by_dev.values()),
            mysql_opened=self.mysql.opened,
            mysql_closed=self.mysql.closed,
            mysql_statements=self.mysql.statements,
            cluster=self._cluster_statistics(),
            **self._canary_statistics(),
        )

    def _canary_statistics(self) -> dict[str, Any]:
        report = self.canary.report()
        if not report.enabled:
            return {}
        return {"canary_ok": report.healthy, "canary_seconds": report.seconds}

    def _cluster_statistics(self) -> ClusterStatistics | None:
        cluster = self.cluster
        if cluster is None:
            return None
        return ClusterStatistics(
            writer_up=cluster.store.connected,
            follower_up=cluster.connected,
            writer_outages=cluster.store.outages,
            follower_outages=cluster.outages,
            nodes=len(cluster.heard) + 1,
            remote_sessions=sum(self.hub.remote_nodes().values()),
            bus_entries=cluster.entries,
            writer_pauses=cluster.store.pauses,
            follower_pauses=cluster.pauses,
        )

    async def queued(self, dev_id: int, user_id: int) -> list[QueuedMessage]:
        """A user's stored queue, oldest first (what ``SELECT ... FROM users_messages`` shows: not yet
        delivered, or not yet acknowledged). Read page by page, up to the queue bound."""
        out: list[QueuedMessage] = []
        after = 0
        while len(out) < self.hub.personal.max_count:
            page = await self.store.queue_page(dev_id, user_id, after, 1000, claim=False)
            out += [entry for _, entry in page]
            if len(page) < 1000:
                break
            after = page[-1][0]
        return out

    async def remote_sessions(self, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], ConnInfo]:
        """Who other nodes' sessions are ((node, conn id) -> ``ConnInfo``), read from their session hashes:
        this node's hub keeps only counts and users of them (``hub._remote``). One gone meanwhile is absent."""
        if self.cluster is None:
            return {}
        return await self.cluster.store.sessions(wanted)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The node's own tasks: deliveries, the observer's sampling, the cluster follower."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.engine.run_deliveries)
            nursery.start_soon(self.observer.run)
            nursery.start_soon(self.canary.run)
            nursery.start_soon(self.sampler.run)
            if self.cluster is not None:
                await nursery.start(self.cluster.run)
            task_status.started()


def _new_id() -> str:
    """The hub's ids of history entries and queued messages (``pipes_messages.id``, ``users_messages.index``)."""
    return str(uuid.uuid4())


def _new_secret() -> str:
    """The hash the hub stores at a user's first JWT login (32 hex digits, like a ``users_auth`` hash)."""
    return secrets.token_hex(16)


@asynccontextmanager
async def _open_store(config: Config) -> AsyncIterator[Store]:
    if config.store:
        node_id = uuid.uuid4().hex[:12]
        async with open_bus(config.store, node_id, heartbeat=config.node_timeout / 3,
                            node_ttl=config.node_timeout + 4) as bus:
            yield bus
        return
    path = Path(config.data_dir) / "cometql.sqlite3"
    async with open_sqlite_store(path, durability=config.durability) as store:
        yield store


@asynccontextmanager
async def _open_stats(config: Config, store: Store) -> AsyncIterator[StatsStore]:
    """stats_history's store: in Redis next to the cluster's keys, or its own SQLite file."""
    if isinstance(store, Bus):
        async with open_redis_stats(RedisAddress.parse(config.store), store.node_id) as redis_stats:
            yield redis_stats
        return
    async with open_sqlite_stats(Path(config.data_dir) / "stats.sqlite3") as sqlite_stats:
        yield sqlite_stats


def _sampling(config: Config, clustered: bool) -> Sampling:
    interval = config.stats_interval
    # in a cluster, the node writing a sample waits this long for the others' traffic counts
    grace = min(5.0, interval / 4) if clustered else 0.0
    return Sampling(interval, config.stats_keep_days, config.stats_channels, grace)


@asynccontextmanager
async def open_node(config: Config) -> AsyncIterator[tuple[Node, list[Record]]]:
    """Open the store, restore the hub from it, join the cluster; yields the node and what was restored."""
    async with _open_store(config) as store, _open_stats(config, store) as stats:
        cluster = Cluster(store, node_timeout=config.node_timeout) if isinstance(store, Bus) else None
        hub = Hub(
            password=config.password,
            new_id=_new_id,
            new_secret=_new_secret,
            send_user_online_events=config.send_user_online_events,
            send_user_offline_events=config.send_user_offline_events,
            max_subscriptions=config.max_subscriptions,
            user_data_access=config.user_data_access,
            node_id=cluster.node_id if cluster else None,
            count_traffic=config.stats_interval > 0,
            max_queue_messages=config.queue_max_messages,
            max_queue_bytes=config.queue_max_bytes,
            queue_ttl=config.queue_ttl,
        )
        if cluster is not None:
            await cluster.begin()
        records = await store.load()
        hub.restore(records, await store.queue_sizes())
        node = Node(hub, store, cluster, canary_interval=config.canary_interval,
                    canary_timeout=config.canary_timeout, stats=stats, sampling=_sampling(config, cluster is not None))
        if cluster is not None:
            await cluster.join(node.engine)
        yield node, records
