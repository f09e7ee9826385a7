"""``serve``: one trio nursery that owns the store, the engine and every listener."""

from __future__ import annotations

import logging
import resource
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

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


@asynccontextmanager
async def open_store(config: Config) -> AsyncIterator[Store]:
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
        hub = Hub(
            password=config.password,
            send_user_online_events=config.send_user_online_events,
            send_user_offline_events=config.send_user_offline_events,
            max_subscriptions=config.max_subscriptions,
        )
        records = await store.load()
        hub.restore(records)
        engine = Engine(hub, store)
        mysql = MysqlFront(config, engine)
        web = WebFront(config, engine)
        metrics = Metrics(engine)
        metrics.attach(mysql=mysql, web=web)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.run_deliveries)
            nursery.start_soon(metrics.run_sampler)
            mysql_listeners = await nursery.start(mysql.serve)
            web_listeners = await nursery.start(web.serve)
            log.info("restored %d records from %s", len(records), store.description)
            task_status.started(Running(
                config, engine, mysql, _port(mysql_listeners), _port(web_listeners), store, web
            ))


def _port(listeners: list[trio.SocketListener]) -> int:
    return int(listeners[0].socket.getsockname()[1])
