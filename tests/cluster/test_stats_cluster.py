"""stats_history on a two-node cluster (separate processes, one real redis-server).

Both nodes sample every second. Each minute (here: second) must have one row
per channel for the whole cluster, written by one node, where ``users``
counts a user with sessions on both nodes once and ``published`` /
``delivered`` add up what every node counted. Either node answers the
dashboard queries over the same rows.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from cometql.redisurl import RedisAddress
from cometql.store import open_redis_stats

from ..ops._stats import LIVE_TIMEOUT, check_dashboard_frames, check_dashboard_queries, query
from ..redis_server import RedisServer
from ..servers import ServerProcess
from ..sql._history_data import sample_day
from ..web._wire import eventually, mysql_rows, open_browser
from ..web.conftest import wait_for_port
from .conftest import NODE_TIMEOUT

DB = 11  # a Redis db of their own: these nodes sample every second
HISTORY_DEV = 3002


def _flush(redis: RedisServer) -> None:
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as s:
        s.sendall(f"SELECT {DB}\r\nFLUSHDB\r\n".encode())
        s.recv(100)


async def _prefill(url: str) -> None:
    async with open_redis_stats(RedisAddress.parse(url), "test") as stats:
        await stats.append_stats(sample_day(HISTORY_DEV))


@pytest.fixture(scope="module")
def two_nodes(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    _flush(redis)
    url = f"redis://127.0.0.1:{redis.port}/{DB}"
    trio.run(_prefill, url)
    env = {"COMETQL_NODE_TIMEOUT": str(NODE_TIMEOUT), "COMETQL_STATS_INTERVAL": "1", "COMETQL_STATS_KEEP_DAYS": "0"}
    started: list[ServerProcess] = []
    for i in range(2):
        data: Path = tmp_path_factory.mktemp(f"stats-node{i}")
        node = ServerProcess(data, extra_args=("--store", url), env=env).start()
        wait_for_port(node.ws_port)
        started.append(node)
    yield started
    for node in started:
        if node.alive:
            node.stop()


@pytest.mark.parametrize("which", [0, 1])
def test_either_node_answers_the_dashboard_queries(two_nodes: list[ServerProcess], which: int) -> None:
    check_dashboard_queries(two_nodes[which], HISTORY_DEV)
    check_dashboard_frames(two_nodes[which], HISTORY_DEV)


async def test_one_row_per_channel_and_minute_with_each_user_counted_once(two_nodes: list[ServerProcess],
                                                                          dev: int) -> None:
    a, b = two_nodes
    for user in (1, 2):
        mysql_rows(a, dev, f"INSERT INTO users_auth (id, hash) VALUES ({user}, 'h{user}')")
    async with (open_browser(a, dev, user_id=1, key="h1") as one_on_a,
                open_browser(b, dev, user_id=1, key="h1") as one_on_b,
                open_browser(b, dev, user_id=2, key="h2") as two_on_b,
                open_browser(a, dev) as anonymous_on_a):
        browsers = (one_on_a, one_on_b, two_on_b, anonymous_on_a)
        for browser in browsers:
            await browser.subscribe("chat")

        def everyone_seen() -> bool:  # each node knows the other's sessions before anything is published
            for node in two_nodes:
                assert mysql_rows(node, dev, "SELECT users FROM pipes WHERE name = 'chat'") == [("4",)]
            return True

        await eventually(everyone_seen, timeout=LIVE_TIMEOUT)
        for n, node in enumerate((a, a, a, a, b, b)):
            mysql_rows(node, dev, f"INSERT INTO pipes_messages (name, event, message) VALUES ('chat', 'e', 'm{n}')")
        for browser in browsers:
            await browser.recv_many(6)

        def sampled() -> bool:
            for node in two_nodes:
                _, rows = query(node, dev, "SELECT channel, sessions, users FROM stats_history "
                                           "WHERE time = (SELECT MAX(time) FROM stats_history)")
                assert sorted(rows) == [("", 4, 2), ("chat", 4, 2)]  # user 1 is on both nodes: one user
                _, sums = query(node, dev, "SELECT SUM(published), SUM(delivered) FROM stats_history "
                                           "WHERE channel = 'chat'")
                assert sums == [(6, 24)]  # every node's counts, each once
            return True

        await eventually(sampled, timeout=LIVE_TIMEOUT)
    _, doubles = query(a, dev, "SELECT time, channel, COUNT(*) AS n FROM stats_history GROUP BY 1, 2 HAVING n > 1")
    assert doubles == []  # the cluster wrote each minute once
