"""stats_history's stores: the same suite on MemoryStats, SQLiteStats and RedisStats (a real redis-server).

Rows: what is appended is read back per dev, between times, per channel,
oldest first; writing a (dev, time, channel) again replaces it; pruning drops
what is older than the retention; the SQLite file and Redis keep rows across a
reopen. One sample per cluster: every node shares its counts, exactly one node
wins the claim of a boundary, and it collects the sum.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from cometql.errors import StoreError
from cometql.hub import StatsRow
from cometql.redisurl import RedisAddress
from cometql.store import MemoryStats, RedisStats, StatsStore, open_redis_stats, open_sqlite_stats

from ..redis_server import RedisServer

OpenStats = Callable[[str], AbstractAsyncContextManager[StatsStore]]

T = 1_764_540_000
ROWS = [
    StatsRow(7, T, "", 5, 3, 10, 20),
    StatsRow(7, T, "chat", 4, 3, 9, 18),
    StatsRow(7, T, "news", 1, 1, 1, 2),
    StatsRow(7, T + 60, "", 6, 4, 0, 0),
    StatsRow(7, T + 60, "chat", 5, 4, 0, 0),
    StatsRow(8, T, "", 1, 1, 1, 1),
]

_redis_dbs = itertools.count(0)


def _flush(redis: RedisServer, db: int) -> None:
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as s:
        s.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
        s.recv(100)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def open_stats(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStats:
    """``open_stats(node)`` opens "the same" store again: one MemoryStats, one SQLite file, one Redis db."""
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis")
        db = 15 - next(_redis_dbs) % 8  # db 0 belongs to the cluster tests' nodes; the record tests count up
        _flush(redis, db)
        address = RedisAddress.parse(f"redis://127.0.0.1:{redis.port}/{db}")
        return lambda node: open_redis_stats(address, node)
    if request.param == "sqlite":
        return lambda node: open_sqlite_stats(tmp_path / "stats.sqlite3")
    memory = MemoryStats()

    @asynccontextmanager
    async def same_memory(node: str) -> AsyncIterator[StatsStore]:
        yield memory

    return same_memory


async def test_rows_come_back_per_dev_oldest_first_and_survive_a_reopen(open_stats: OpenStats) -> None:
    async with open_stats("n1") as stats:
        await stats.append_stats(list(reversed(ROWS)))
    async with open_stats("n1") as stats:
        assert await stats.read_stats(7) == ROWS[:5]
        assert await stats.read_stats(8) == ROWS[5:]
        assert await stats.read_stats(9) == []


async def test_reads_between_times_and_for_one_channel(open_stats: OpenStats) -> None:
    async with open_stats("n1") as stats:
        await stats.append_stats(ROWS)
        assert await stats.read_stats(7, since=T + 1) == ROWS[3:5]
        assert await stats.read_stats(7, until=T) == ROWS[:3]
        assert await stats.read_stats(7, since=T, until=T + 60, channel="") == [ROWS[0], ROWS[3]]
        assert await stats.read_stats(7, channel="chat") == [ROWS[1], ROWS[4]]
        assert await stats.read_stats(7, since=T + 61) == []


async def test_writing_a_minute_again_replaces_its_rows(open_stats: OpenStats) -> None:
    async with open_stats("n1") as stats:
        await stats.append_stats(ROWS)
        again = StatsRow(7, T, "", 50, 30, 100, 200)
        await stats.append_stats([again])
        got = await stats.read_stats(7, until=T, channel="")
        assert got == [again]


async def test_pruning_drops_rows_older_than_the_retention(open_stats: OpenStats) -> None:
    async with open_stats("n1") as stats:
        await stats.append_stats(ROWS)
        await stats.prune_stats(T + 60)
        assert await stats.read_stats(7) == ROWS[3:5]
        assert await stats.read_stats(8) == []


async def test_one_node_claims_a_boundary_and_collects_every_nodes_counts(open_stats: OpenStats) -> None:
    async with open_stats("n1") as one, open_stats("n2") as two:
        clustered = isinstance(one, RedisStats)
        other = two if clustered else one  # a single node's store: its counts stay in that one object
        await one.share_traffic(T, {(7, "chat"): (2, 6), (7, "news"): (1, 0)})
        await other.share_traffic(T, {(7, "chat"): (0, 3), (8, "x"): (0, 0)})
        claims = [await one.claim_sample(T), await two.claim_sample(T)]
        assert claims == ([True, False] if clustered else [True, True])  # a cluster writes each sample once
        assert await one.collect_traffic(T) == {(7, "chat"): (2, 9), (7, "news"): (1, 0)}
        assert await one.collect_traffic(T) == {}  # collected once
        assert await one.claim_sample(T + 60) is True


async def test_a_share_that_comes_after_its_minute_was_collected_counts_in_the_next(open_stats: OpenStats) -> None:
    async with open_stats("n1") as one, open_stats("n2") as two:
        other = two if isinstance(one, RedisStats) else one
        await one.share_traffic(T, {(7, "chat"): (1, 1)})
        assert await one.collect_traffic(T) == {(7, "chat"): (1, 1)}
        await other.share_traffic(T, {(7, "chat"): (2, 2)})  # late: past the grace
        await other.share_traffic(T + 60, {(7, "chat"): (4, 4)})
        await one.share_traffic(T + 120, {(7, "chat"): (8, 8)})  # a later minute: not yet
        assert await one.collect_traffic(T + 60) == {(7, "chat"): (6, 6)}
        assert await one.collect_traffic(T + 120) == {(7, "chat"): (8, 8)}


async def test_a_redis_that_is_gone_fails_the_call_and_the_next_one_reconnects(redis: RedisServer) -> None:
    address = RedisAddress.parse(f"redis://127.0.0.1:{redis.port}/14")
    _flush(redis, 14)
    async with open_redis_stats(address, "n1") as stats:
        await stats.append_stats(ROWS[:1])
        assert stats._conn is not None
        stats._conn.abort()  # the connection breaks under the store's feet
        with pytest.raises(StoreError):
            await stats.read_stats(7)
        assert await stats.read_stats(7) == ROWS[:1]
