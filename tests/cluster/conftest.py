"""Cluster fixtures: three CometQL nodes (separate processes) on the session's real redis-server.

The nodes live for the whole module; tests keep apart by dev_id, as everywhere.
``node_timeout`` is short so that a killed node's sessions leave presence quickly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..redis_server import RedisServer
from ..servers import ServerProcess
from ..web.conftest import wait_for_port

NODE_TIMEOUT = 3.0


def start_node(redis: RedisServer, data_dir: Path, *extra: str, ws_port: int | None = None,
               env: dict[str, str] | None = None) -> ServerProcess:
    ports = {} if ws_port is None else {"ws_port": ws_port}
    node = ServerProcess(data_dir, extra_args=("--store", redis.url, *extra),
                         env={"COMETQL_NODE_TIMEOUT": str(NODE_TIMEOUT), **(env or {})}, **ports).start()
    wait_for_port(node.ws_port)
    return node


@pytest.fixture(scope="module")
def nodes(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    started = [start_node(redis, tmp_path_factory.mktemp(f"node{i}")) for i in range(3)]
    yield started
    for node in started:
        if node.alive:
            node.stop()
