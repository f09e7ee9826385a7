"""``serve``: one trio nursery that owns the store, the engine and every listener."""

from __future__ import annotations

import logging
import os
import resource
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from .cluster import Bus, Cluster, open_bus
from .config import Config
from .engine import Engine
from .hub import Hub
from .metrics import Metrics
from .mysql import MysqlFront
from .store import Store, open_sqlite_store
from .web import WebFront

__all__ = ["Running", "serve"]

log = logging.getLogger("cometql")


@dataclass
class Running:
    """What a started server tells its starter: where it listens and what it runs on."""

    config: Config
    engine: Engine
    mysql: MysqlFront
    mysql_port: int
    ws_port: int
    store: Store
    web: WebFront
    cluster: Cluster | None = None


#: Set by ``cometql serve --workers N`` in each worker process: bind the ports with SO_REUSEPORT.
WORKER_ENV = "COMETQL_WORKER_INDEX"


@asynccontextmanager
async def open_store(config: Config) -> AsyncIterator[Store]:
    if config.store:
        node_id = uuid.uuid4().hex[:12]
        async with open_bus(config.store, node_id, heartbeat=config.node_timeout / 3,
                            node_ttl=config.node_timeout + 4) as bus:
            yield bus
        return
    path = Path(config.data_dir) / "cometql.sqlite3"
    async with open_sqlite_store(path, durability=config.durability) as store:
        yield store


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one: each browser is a socket. Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, hard, exc)
    return soft


async def serve(config: Config, *, task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED) -> None:
    limit = raise_open_files_limit()
    if limit < 100_000:
        log.info("open-files limit %d: at most about %d browser connections", limit, max(0, limit - 100))
    async with open_store(config) as store:
        cluster = Cluster(store, node_timeout=config.node_timeout) if isinstance(store, Bus) else None
        hub = Hub(
            password=config.password,
            send_user_online_events=config.send_user_online_events,
            send_user_offline_events=config.send_user_offline_events,
            max_subscriptions=config.max_subscriptions,
            node_id=cluster.node_id if cluster else None,
        )
        if cluster is not None:
            await cluster.begin()
        records = await store.load()
        hub.restore(records)
        engine = Engine(hub, store)
        if cluster is not None:
            await cluster.join(engine)
        mysql = MysqlFront(config, engine)
        web = WebFront(config, engine)
        mysql.reuse_port = web.reuse_port = WORKER_ENV in os.environ
        mysql.cluster = cluster
        if cluster is not None and WORKER_ENV in os.environ:
            web.node_id, web.relay_dir = cluster.node_id, Path(config.data_dir)
        metrics = Metrics(engine)
        metrics.attach(mysql=mysql, web=web, cluster=cluster)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.run_deliveries)
            nursery.start_soon(metrics.run_sampler)
            if cluster is not None:
                await nursery.start(cluster.run)
            mysql_listeners = await nursery.start(mysql.serve)
            web_listeners = await nursery.start(web.serve)
            log.info("restored %d records from %s", len(records), store.description)
            task_status.started(Running(
                config, engine, mysql, _port(mysql_listeners), _port(web_listeners), store, web, cluster
            ))


def _port(listeners: list[trio.SocketListener]) -> int:
    return int(listeners[0].socket.getsockname()[1])
