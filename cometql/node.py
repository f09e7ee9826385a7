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

import trio

from .cluster import Bus, Cluster, open_bus
from .config import Config
from .engine import Engine
from .hub import Hub, QueuedMessage, Record
from .metrics import Metrics
from .observe import NULL_OBSERVER, ClusterStatistics, MysqlCounters, Observer, Statistics
from .store import Store, open_sqlite_store

__all__ = ["Node", "open_node"]


class Node:
    """What one server process runs on; the fronts share it.

    The node builds its engine and observer itself: the observer reads the
    node's ``statistics``, and the engine reports to the observer.
    """

    def __init__(self, hub: Hub, store: Store, cluster: Cluster | None = None, *, metrics: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.store = store
        self.cluster = cluster
        self.clock = clock
        #: The MySQL port's counters (the MySQL front writes them, the snapshot reads them).
        self.mysql = MysqlCounters()
        self.observer: Observer = Metrics(self.statistics, clock=clock) if metrics else NULL_OBSERVER
        self.engine = Engine(hub, store, observer=self.observer, clock=clock)

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
        )

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

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The node's own tasks: deliveries, the observer's sampling, the cluster follower."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.engine.run_deliveries)
            nursery.start_soon(self.observer.run)
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
async def open_node(config: Config) -> AsyncIterator[tuple[Node, list[Record]]]:
    """Open the store, restore the hub from it, join the cluster; yields the node and what was restored."""
    async with _open_store(config) as store:
        cluster = Cluster(store, node_timeout=config.node_timeout) if isinstance(store, Bus) else None
        hub = Hub(
            password=config.password,
            new_id=_new_id,
            new_secret=_new_secret,
            send_user_online_events=config.send_user_online_events,
            send_user_offline_events=config.send_user_offline_events,
            max_subscriptions=config.max_subscriptions,
            node_id=cluster.node_id if cluster else None,
            max_queue_messages=config.queue_max_messages,
            max_queue_bytes=config.queue_max_bytes,
            queue_ttl=config.queue_ttl,
        )
        if cluster is not None:
            await cluster.begin()
        records = await store.load()
        hub.restore(records, await store.queue_sizes())
        node = Node(hub, store, cluster)
        if cluster is not None:
            await cluster.join(node.engine)
        yield node, records
