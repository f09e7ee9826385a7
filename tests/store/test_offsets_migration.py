"""Channel offsets survive restarts, and data of the version before them loads (a migration).

Before channel offsets, SQLite's ``history`` table had no offset column and Redis' history entries
were five fields; channels had no epoch. Loading such data numbers each channel's kept messages
1, 2, ... in order and gives each channel a fresh epoch (no reader knew an epoch), durably, so the
next message continues the count and every node (or restart) sees the same epoch.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from cometql.cluster import open_bus
from cometql.hub import HistoryEntry, Hub
from cometql.hub.records import AppendHistory
from cometql.redisurl import RedisAddress
from cometql.store import codec, open_sqlite_store
from cometql.store.resp import RedisConnection

from ..redis_server import RedisServer
from .test_store_conformance import _flush

OLD_SQLITE_SCHEMA = """
CREATE TABLE pipes_settings (dev INTEGER, channel TEXT, length INTEGER, PRIMARY KEY (dev, channel));
CREATE TABLE history (seq INTEGER PRIMARY KEY AUTOINCREMENT, dev INTEGER, channel TEXT,
    id TEXT, time INTEGER, event TEXT, message TEXT, user_id INTEGER);
CREATE INDEX history_channel ON history (dev, channel, seq);
CREATE INDEX history_id ON history (dev, id);
"""


def restored(records: list) -> Hub:  # type: ignore[type-arg]
    hub = Hub(password="p", new_id=lambda: "unused", new_secret=lambda: "unused")
    hub.restore(records)
    return hub


def _old_entries(channel: str, n: int) -> list[tuple[str, int, str, str, int]]:
    return [(f"{channel}-{i}", 1_700_000_000 + i, "ev", f"{channel} {i}", 0) for i in range(n)]


async def test_an_sqlite_file_without_offsets_is_numbered_and_keeps_counting(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SQLITE_SCHEMA)
    db.execute("INSERT INTO pipes_settings VALUES (0, 'chat', 10), (0, 'news', 10)")
    for channel, n in (("chat", 3), ("news", 2), ("chat", 0)):
        db.executemany("INSERT INTO history (dev, channel, id, time, event, message, user_id)"
                       " VALUES (0, ?, ?, ?, ?, ?, ?)", [(channel, *e) for e in _old_entries(channel, n)])
    db.execute("INSERT INTO history (dev, channel, id, time, event, message, user_id)"
               " VALUES (0, 'news', 'late', 1, 'ev', 'late', 0)")  # interleaved with chat's rows
    db.commit()
    db.close()
    async with open_sqlite_store(path) as store:
        hub = restored(await store.load())
        assert [(e.id, e.offset) for e in hub.state.history(0, "chat")] == [("chat-0", 1), ("chat-1", 2), ("chat-2", 3)]
        assert [(e.id, e.offset) for e in hub.state.history(0, "news")] == [("news-0", 1), ("news-1", 2), ("late", 3)]
        epoch, last = hub.state.position(0, "chat")  # type: ignore[misc]
        assert epoch and last == 3 and hub.state.position(0, "news")[0] != epoch  # type: ignore[index]
        await store.commit([AppendHistory(0, "chat", HistoryEntry("new", 2, "ev", "new"), 10)])
    async with open_sqlite_store(path) as store:  # the migration ran once; the epoch is durable
        again = restored(await store.load())
    assert again.state.position(0, "chat") == (epoch, 4)
    assert [e.offset for e in again.state.history(0, "chat")] == [1, 2, 3, 4]


async def test_a_recreated_sqlite_store_starts_new_epochs(tmp_path: Path) -> None:
    epochs = []
    for _ in range(2):
        path = tmp_path / "comet.sqlite3"
        path.unlink(missing_ok=True)
        async with open_sqlite_store(path) as store:
            await store.commit([AppendHistory(0, "chat", HistoryEntry(f"id{len(epochs)}", 1, "ev", "m"), 10)])
            epochs.append(restored(await store.load()).state.position(0, "chat"))
    assert epochs[0] != epochs[1] and [p[1] for p in epochs] == [1, 1]  # type: ignore[index]


async def test_redis_history_without_offsets_is_numbered_once_for_every_node(redis: RedisServer) -> None:
    db = 14
    _flush(redis, db)
    url = f"redis://127.0.0.1:{redis.port}/{db}"
    conn = await RedisConnection.open(RedisAddress.parse(url))
    try:
        await conn.pipeline([
            ["HSET", "cq:settings", "0:chat", 10],
            ["RPUSH", "cq:h:0:chat", *(orjson.dumps(list(e)) for e in _old_entries("chat", 3))],
            ["SADD", "cq:hkeys", "0:chat"],
        ])
    finally:
        await conn.aclose()
    async with open_bus(url, "node-a") as bus:
        first = restored(await bus.load())
        second = restored(await bus.load())  # another node starting: the same numbers and epoch
        assert [(e.id, e.offset) for e in first.state.history(0, "chat")] == [("chat-0", 1), ("chat-1", 2),
                                                                             ("chat-2", 3)]
        epoch, last = first.state.position(0, "chat")  # type: ignore[misc]
        assert last == 3 and second.state.position(0, "chat") == (epoch, 3)
        got: list[object] = []
        await bus.commit([AppendHistory(0, "chat", HistoryEntry("new", 2, "ev", "new"), 10)],
                         lambda stored, positions=(): got.append((stored, list(positions))))
        assert got == [(True, [(epoch, 4)])]  # Redis continues the count
        assert [e.offset for e in restored(await bus.load()).state.history(0, "chat")] == [1, 2, 3, 4]


def test_bus_values_of_the_previous_version_decode() -> None:
    """A rolling upgrade: a node of the previous version writes history entries without offset or epoch."""
    old = codec.from_list(["AppendHistory", 0, "chat", ["id1", 1, "ev", "m", 0], 10])
    assert old == AppendHistory(0, "chat", HistoryEntry("id1", 1, "ev", "m", 0), 10)
    assert old.epoch == "" and old.entry.offset == 0  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        codec.from_list(["AppendHistory", 0, "chat"])


async def test_redis_data_lost_starts_a_new_epoch(redis: RedisServer) -> None:
    db = 13
    _flush(redis, db)
    url = f"redis://127.0.0.1:{redis.port}/{db}"
    got: list[object] = []

    def settle(stored: bool, positions: object = ()) -> None:
        got.append(list(positions))  # type: ignore[call-overload]

    async with open_bus(url, "node-a") as bus:
        for i in range(2):
            await bus.commit([AppendHistory(0, "chat", HistoryEntry(f"a{i}", 1, "ev", "m"), 10)], settle)
        _flush(redis, db)  # Redis restarted empty
        await bus.commit([AppendHistory(0, "chat", HistoryEntry("b0", 1, "ev", "m"), 10)], settle)
    assert got == [[("a0", 1)], [("a0", 2)], [("b0", 1)]]  # a new epoch (named after its first message)
