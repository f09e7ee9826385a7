"""Queues written by the version before paged queues load after the upgrade, in their order.

SQLite kept the same ``queue`` table (written here with plain SQL, as the old
version did); Redis kept each queue as a hash only (no ``cq:qo`` order, no
``cq:qseq`` / ``cq:qbytes``), ordered by the time in each value: the first
start gives it positions, and new messages come after the old ones.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from cometql.cluster import open_bus
from cometql.hub import QueuedMessage
from cometql.hub.records import DeleteQueued, QueueMessage
from cometql.redisurl import RedisAddress
from cometql.store import Store, open_sqlite_store
from cometql.store.resp import RedisConnection

from ..redis_server import RedisServer

OLD = [QueuedMessage(f"old-{n}", 1_700_000_000 + n, "ev", f"old message {n} ü") for n in range(30)]


async def _all(store: Store, dev_id: int, user_id: int) -> list[QueuedMessage]:
    out: list[QueuedMessage] = []
    after = 0
    while page := await store.queue_page(dev_id, user_id, after, 8):
        out += [e for _, e in page]
        after = page[-1][0]
    return out


async def _upgraded(store: Store) -> None:
    """What every upgraded store must show: the old queue in order, sizes, then new messages after it."""
    assert await store.queue_sizes() == [(1, 5, len(OLD), sum(e.nbytes for e in OLD))]
    assert await _all(store, 1, 5) == OLD
    new = QueuedMessage("new-1", 1_800_000_000, "ev", "after the upgrade")
    await store.commit([QueueMessage(1, 5, new), DeleteQueued(1, 5, ("old-0",), OLD[0].nbytes)])
    assert await _all(store, 1, 5) == [*OLD[1:], new]


async def test_an_sqlite_file_of_the_previous_version_loads(tmp_path: Path) -> None:
    path = tmp_path / "cometql.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, dev INTEGER, uid INTEGER,
            id TEXT, time INTEGER, event TEXT, message TEXT);
        CREATE INDEX queue_user ON queue (dev, uid, seq);
    """)
    db.executemany("INSERT INTO queue (dev, uid, id, time, event, message) VALUES (1, 5, ?, ?, ?, ?)",
                   [(e.id, e.time, e.event, e.message) for e in OLD])
    db.commit()
    db.close()
    async with open_sqlite_store(path) as store:
        await _upgraded(store)


async def test_redis_data_of_the_previous_version_loads(redis: RedisServer) -> None:
    url = f"redis://127.0.0.1:{redis.port}/13"
    conn = await RedisConnection.open(RedisAddress.parse(url))
    try:
        writes: list[list[str | bytes | int | float]] = [["FLUSHDB"], ["SADD", "cq:qkeys", "1:5"]]
        for n, e in reversed(list(enumerate(OLD))):  # hash order is not queue order: the time in each value is
            writes.append(["HSET", "cq:q:1:5", e.id,
                           orjson.dumps([1_700_000_000_000_000_000 + n, e.id, e.time, e.event, e.message])])
        await conn.pipeline(writes)
    finally:
        await conn.aclose()
    async with open_bus(url, "upgrade") as bus:
        await _upgraded(bus)
    async with open_bus(url, "upgrade") as bus:  # migrated once: a second start changes nothing
        assert [e.id for e in await _all(bus, 1, 5)] == [*(e.id for e in OLD[1:]), "new-1"]
