"""Channel recovery on a two-node cluster (Redis assigns the offsets), in Chromium through the fault proxy.

The page is connected to node A; messages are published on node B (and on A), so they reach A over
the Redis bus with the offsets Redis assigned. After an outage the page recovers from node A's
history exactly the messages it missed, in order, once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from cometql.bench._faultproxy import FaultProxy

from ..cluster.conftest import start_node
from ..redis_server import RedisServer
from ..servers import ServerProcess
from .helpers import PAGES, TRANSPORT_PARAMS, Browser, make_query
from .test_recovery import exactly, numbers, outage, publish, with_history


@pytest.fixture(scope="module")
def two_nodes(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    started = [start_node(redis, Path(tmp_path_factory.mktemp(f"rnode{i}")), "--base-dir", str(PAGES))
               for i in range(2)]
    yield started
    for node in started:
        if node.alive:
            node.stop()


def test_recovery_on_a_cluster(driver: webdriver.Chrome, two_nodes: list[ServerProcess], transport: str,
                               dev: int) -> None:
    a, b = two_nodes
    on_a, on_b = make_query(a.connect(dev)), make_query(b.connect(dev))
    name = f"clrec_{uuid.uuid4().hex[:10]}"
    with_history(on_b, name)
    with FaultProxy((a.host, a.ws_port)) as proxy:
        page = Browser(driver, f"http://127.0.0.1:{proxy.port}")
        try:
            page.open(dev_id=dev, subs=name, **TRANSPORT_PARAMS[transport])
            page.wait_for(f"cometApi.streams && cometApi.streams['{name}']", what="the channel's position")
            publish(on_b, name, 1)
            assert numbers(page, name, 1) == [1]

            def meanwhile() -> None:
                publish(on_b, name, 2, 3, 4)
                publish(on_a, name, 5, 6)
                publish(on_b, name, 7, 8, 9, 10)

            outage(proxy, meanwhile)
            exactly(page, on_a, name, list(range(1, 11)))
            offsets = [int(r[0]) for r in on_b(f"SELECT offset FROM pipes_messages WHERE name = '{name}'")]
            assert offsets == list(range(1, 12))  # one counter for the cluster, no hole, no repeat
        finally:
            page.reset()
