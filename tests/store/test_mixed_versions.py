"""Redis keys written by a node of the previous version during a rolling upgrade are put in this layout.

A node of the previous version (before reliable delivery) queues a message with ``HSET`` of the user's
hash only, deletes with ``HDEL`` only, and appends history entries without an offset. A node of this
version puts that right (``store.redis``, ``cluster._compat``): when it reads the old node's record
from the bus (``old_node_commands``), and, for whatever it did not read, when a page or a start-up
finds a queue out of step. The end-to-end test with real nodes of both versions is
``tests/cluster/test_rolling_upgrade.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from cometql.cluster import _compat
from cometql.hub import QueuedMessage
from cometql.hub.records import AppendHistory, DeleteQueued, HistoryEntry, QueueMessage
from cometql.redisurl import RedisAddress
from cometql.store import redis as keys
from cometql.store.resp import RedisConnection

from ..redis_server import RedisServer

DB = 12


@pytest.fixture
async def conn(redis: RedisServer) -> AsyncIterator[RedisConnection]:
    c = await RedisConnection.open(RedisAddress.parse(f"redis://127.0.0.1:{redis.port}/{DB}"))
    await c.call("FLUSHDB")
    yield c
    await c.aclose()


def msg(n: int) -> QueuedMessage:
    return QueuedMessage(f"m{n}", 1_700_000_000 + n, "ev", f"message {n} é")


async def new_node_queues(conn: RedisConnection, n: int) -> None:
    await conn.pipeline(keys.record_commands(QueueMessage(1, 5, msg(n))))


async def old_node_queues(conn: RedisConnection, n: int) -> QueueMessage:
    """What the previous version's ``record_commands`` ran for a ``QueueMessage``."""
    m = msg(n)
    await conn.pipeline([["HSET", "cq:q:1:5", m.id, orjson.dumps([1_700_000_000_000_000_000 + n, m.id, m.time,
                                                                   m.event, m.message])],
                         ["SADD", "cq:qkeys", "1:5"]])
    return QueueMessage(1, 5, m)


async def page_ids(conn: RedisConnection) -> list[str]:
    return [m.id for _, m in await keys.queue_page(conn, 1, 5, 0, 100)]


async def test_a_page_finds_what_an_old_node_queued_and_not_what_it_deleted(conn: RedisConnection) -> None:
    await new_node_queues(conn, 1)
    await new_node_queues(conn, 2)
    await old_node_queues(conn, 3)  # no position: a page of the last version missed it
    await conn.call("HDEL", "cq:q:1:5", "m1")  # deleted by an old node: its position stays behind
    assert await page_ids(conn) == ["m2", "m3"]
    assert await conn.call("ZCARD", "cq:qo:1:5") == 2
    assert await keys.queue_sizes(conn) == [(1, 5, 2, msg(2).nbytes + msg(3).nbytes)]


async def test_records_of_an_old_node_give_positions_in_bus_order(conn: RedisConnection) -> None:
    await new_node_queues(conn, 1)
    old = [await old_node_queues(conn, n) for n in (2, 3)]
    await new_node_queues(conn, 4)  # written before this node read the old node's entry
    for rec in old:
        await conn.pipeline(keys.old_node_commands(rec))
    await conn.pipeline(keys.old_node_commands(old[0]))  # read twice (a replay): nothing changes
    assert await page_ids(conn) == ["m1", "m4", "m2", "m3"]
    assert int(await conn.call("HGET", "cq:qbytes", "1:5")) == sum(msg(n).nbytes for n in (1, 2, 3, 4))
    await conn.call("HDEL", "cq:q:1:5", "m1", "m2")  # an old node delivered them
    await conn.pipeline(keys.old_node_commands(DeleteQueued(1, 5, ("m1", "m2"))))
    assert await conn.call("ZRANGE", "cq:qo:1:5", 0, -1) == [b"m4", b"m3"]
    assert int(await conn.call("HGET", "cq:qbytes", "1:5")) == msg(3).nbytes + msg(4).nbytes
    await conn.call("DEL", "cq:q:1:5")  # DELETE FROM users_messages on an old node
    await conn.pipeline(keys.old_node_commands(DeleteQueued(1, 5, None)))
    assert await conn.call("EXISTS", "cq:qo:1:5", "cq:qbytes") == 0


def entry(n: int) -> HistoryEntry:
    return HistoryEntry(f"h{n}", 1_700_000_000 + n, "ev", f"news {n}")


async def new_node_appends(conn: RedisConnection, n: int) -> list[object]:
    replies = await conn.pipeline([*keys.record_commands(AppendHistory(1, "news", entry(n), 100)),
                                   ["DEL", keys.ASSIGNED]])
    return [replies[0][0].decode(), replies[0][1]]


async def old_node_appends(conn: RedisConnection, n: int) -> AppendHistory:
    e = entry(n)
    await conn.pipeline([["RPUSH", "cq:h:1:news", orjson.dumps([e.id, e.time, e.event, e.message, e.user_id])],
                         ["SADD", "cq:hkeys", "1:news"], ["LTRIM", "cq:h:1:news", -100, -1]])
    return AppendHistory(1, "news", e, 100)


async def test_history_entries_of_an_old_node_get_offsets_in_list_order(conn: RedisConnection) -> None:
    epoch, first = await new_node_appends(conn, 1)
    assert first == 1
    old = await old_node_appends(conn, 2)
    assert await new_node_appends(conn, 3) == [epoch, 3]  # the old entry before it was numbered first
    (reply,) = await conn.pipeline(keys.old_node_commands(old))  # the new node reads the old node's entry
    assert reply == [epoch.encode(), 2]
    records = await keys.load(conn)
    kept = [(r.entry.id, r.entry.offset, r.epoch) for r in records if isinstance(r, AppendHistory)]
    assert kept == [("h1", 1, epoch), ("h2", 2, epoch), ("h3", 3, epoch)]


async def test_an_old_entry_at_the_end_of_a_list_is_numbered_at_load(conn: RedisConnection) -> None:
    epoch, _ = await new_node_appends(conn, 1)
    await old_node_appends(conn, 2)  # no new node read it before the cluster stopped
    records = await keys.load(conn)
    kept = [(r.entry.id, r.entry.offset, r.epoch) for r in records if isinstance(r, AppendHistory)]
    assert kept == [("h1", 1, epoch), ("h2", 2, epoch)]


def test_entries_for_old_nodes_carry_what_they_leave_out_beside_them() -> None:
    values = [AppendHistory(1, "news", HistoryEntry("h1", 1, "ev", "x", 0, 7), 100, "E"),
              DeleteQueued(1, 5, ("m1",), 42), QueueMessage(1, 5, msg(1))]
    fields = _compat.encode(values, True)  # type: ignore[arg-type]
    data = {str(k).encode(): v for k, v in zip(fields[::2], fields[1::2], strict=True)}
    old = orjson.loads(data[b"d"])
    assert old[0] == ["AppendHistory", 1, "news", ["h1", 1, "ev", "x", 0], 100]  # the previous version's fields
    assert old[1] == ["DeleteQueued", 1, 5, ["m1"]]
    back = _compat.decode(data)  # type: ignore[arg-type]
    assert back[1] == values[1] and back[2] == values[2]
    assert back[0] == AppendHistory(1, "news", HistoryEntry("h1", 1, "ev", "x", 0), 100)  # offsets: field ``o``
    assert _compat.encode(values, False)[1] == _compat.codec.encode_many(values)  # type: ignore[arg-type]


async def test_a_start_beside_an_old_node_puts_every_queue_right(conn: RedisConnection) -> None:
    await new_node_queues(conn, 1)
    await old_node_queues(conn, 2)  # queued and ...
    await conn.call("HDEL", "cq:q:1:5", "m1")  # ... deleted by an old node while no new node ran: counts equal
    assert await keys.queue_sizes(conn) == [(1, 5, 1, msg(1).nbytes)]  # by the counts alone: not seen
    assert await keys.queue_sizes(conn, check_all=True) == [(1, 5, 1, msg(2).nbytes)]
    assert await conn.call("ZRANGE", "cq:qo:1:5", 0, -1) == [b"m2"]
