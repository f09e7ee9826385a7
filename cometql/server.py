"""``serve``: one trio nursery that owns the node (store, engine, cluster) and every listener."""

from __future__ import annotations

import gc
import logging
import os
import resource
from dataclasses import dataclass
from pathlib import Path

import trio

from .config import Config
from .mysql import MysqlFront, MysqlOptions
from .node import Node, open_node
from .web import WebFront, WebOptions

__all__ = ["WORKER_ENV", "Running", "serve"]

log = logging.getLogger("cometql")


@dataclass(frozen=True)
class Running:
    """What a started server tells its starter: where it listens and what it runs on."""

    config: Config
    node: Node
    mysql_port: int
    ws_port: int


#: Set by ``cometql serve --workers N`` in each worker process: bind the ports with SO_REUSEPORT.
WORKER_ENV = "COMETQL_WORKER_INDEX"


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


def _web_options(config: Config, node: Node) -> WebOptions:
    worker = WORKER_ENV in os.environ
    if node.cluster is not None and worker:  # long-poll requests may reach a sibling worker: relay them
        return WebOptions.from_config(config, reuse_port=True, node_id=node.cluster.node_id,
                                      relay_dir=Path(config.data_dir))
    if node.cluster is not None and config.advertise:  # ... or another machine's node (see web/_relay.py)
        return WebOptions.from_config(config, reuse_port=worker, node_id=node.cluster.node_id)
    return WebOptions.from_config(config, reuse_port=worker)


async def serve(config: Config, *, task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED) -> None:
    limit = raise_open_files_limit()
    if limit < 100_000:
        log.info("open-files limit %d: at most about %d browser connections", limit, max(0, limit - 100))
    async with open_node(config) as (node, restored):
        mysql = MysqlFront(node, MysqlOptions.from_config(config, reuse_port=WORKER_ENV in os.environ))
        web = WebFront(node, _web_options(config, node))
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            mysql_listeners = await nursery.start(mysql.serve)
            web_listeners = await nursery.start(web.serve)
            log.info("restored %d records from %s", len(restored), node.store.description)
            # what is built by now (modules, sqlglot's tables, the restored state) lives as long as the server:
            # out of the collector's full passes, which otherwise stopped every client for ~100 ms whenever
            # a big statement (a 10,000-row INSERT) left enough garbage to start one
            gc.collect()
            gc.freeze()
            task_status.started(Running(config, node, _port(mysql_listeners), _port(web_listeners)))


def _port(listeners: list[trio.SocketListener]) -> int:
    return int(listeners[0].socket.getsockname()[1])
