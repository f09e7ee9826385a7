"""Every store gives back what it was given: the same suite runs on MemoryStore, SQLiteStore and Redis.

The hub persists durable state as records and rebuilds it by replaying what
``load()`` returns, so the contract of a store is simple to state: write records,
reopen, replay into a fresh hub, and the durable state is the same as in a hub
that applied the records directly. The scenario below writes every record type
(the test checks that none is missing), including the ones whose effect depends
on order (history trimmed to ``keep``, queued messages deleted by exact id).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from cometql.cluster import open_bus
from cometql.errors import QueueClaimed, StoreError
from cometql.hub import HistoryEntry, Hub, QueuedMessage, Record
from cometql.hub.records import (
    RECORD_TYPES,
    AddRevokedToken,
    AppendHistory,
    ChannelPosition,
    ClearHistory,
    DeleteAuth,
    DeleteHistoryIds,
    DeletePipeSettings,
    DeleteQueued,
    DeleteRevokedToken,
    DeleteUserData,
    QueueMessage,
    SetAuth,
    SetLastSeen,
    SetPipeSettings,
    SetUserData,
)
from cometql.store import MemoryStore, SQLiteStore, Store, open_sqlite_store

from ..redis_server import RedisServer

OpenStore = Callable[[], AbstractAsyncContextManager[Store]]

DEVS = (0, 7)
USERS = range(1, 8)
CHANNELS = ("chat", "news", "gone", "trust_log", "cleared", "empty")


def _hist(n: int, channel: str = "chat") -> HistoryEntry:
    return HistoryEntry(f"h-{channel}-{n}", 1_700_000_000 + n, "ev", f"{channel} message {n}", n % 3)


def _queued(n: int) -> QueuedMessage:
    return QueuedMessage(f"q-{n}", 1_700_000_100 + n, "ev", f"queued message {n} with 'quotes' and ünïcode")


def scenario() -> list[list[Record]]:
    """Batches of records as the engine would write them, covering every record type."""
    batches: list[list[Record]] = [
        [SetAuth(0, 1, "hash1"), SetAuth(7, 1, "hash-of-dev-7"), SetAuth(0, 2, "old")],
        [SetAuth(0, 2, "new"), SetAuth(0, 3, "dropped"), DeleteAuth(0, 3)],
        [SetUserData(0, 1, '{"name": "ann"}'), SetUserData(0, 2, "x"), DeleteUserData(0, 2)],
        [SetUserData(7, 2, "dev seven")],
        [AddRevokedToken(0, "tok.a"), AddRevokedToken(0, "tok.b"), AddRevokedToken(7, "tok.a")],
        [DeleteRevokedToken(0, "tok.a"), AddRevokedToken(0, "tok.c")],
        [SetPipeSettings(0, "chat", 3), SetPipeSettings(0, "gone", 5), SetPipeSettings(7, "news", 2)],
        [SetPipeSettings(0, "chat", 3), SetPipeSettings(0, "cleared", 4)],
    ]
    # chat keeps 3: five appends in separate writes leave entries 3, 4, 5 in order.
    batches += [[AppendHistory(0, "chat", _hist(n), 3)] for n in range(1, 6)]
    batches += [
        [AppendHistory(0, "gone", _hist(1, "gone"), 5), DeletePipeSettings(0, "gone")],
        [AppendHistory(0, "cleared", _hist(1, "cleared"), 4), ClearHistory(0, "cleared")],
        [AppendHistory(0, "trust_log", _hist(n, "trust_log"), 1000) for n in range(1, 5)],
        [DeleteHistoryIds(0, ("h-trust_log-2",))],
        [AppendHistory(7, "news", _hist(n, "news"), 2) for n in range(1, 4)],
        [ChannelPosition(7, "empty", "epoch-7", 41)],  # a position with no entry left (as a load returns)
        [QueueMessage(0, 5, _queued(n)) for n in range(1, 5)],
        [DeleteQueued(0, 5, ("q-1", "q-3"), _queued(1).nbytes + _queued(3).nbytes)],  # q-2 and q-4 stay, in order
        [QueueMessage(0, 6, _queued(10)), QueueMessage(0, 6, _queued(11))],
        [DeleteQueued(0, 6, None)],
        [QueueMessage(7, 5, _queued(20))],
        [SetLastSeen(0, 1, 1_700_000_500), SetLastSeen(0, 1, 1_700_000_600), SetLastSeen(7, 4, 1_700_000_700)],
    ]
    return batches


def durable_state(hub: Hub) -> dict[str, object]:
    """Everything a restart must keep, read through the hub's public accessors."""
    state: dict[str, object] = {}
    for dev in DEVS:
        state[f"revoked/{dev}"] = hub.state.revoked_tokens(dev)
        state[f"known_users/{dev}"] = hub.known_users(dev)
        for uid in USERS:
            state[f"auth/{dev}/{uid}"] = hub.state.auth_hash(dev, uid)
            state[f"data/{dev}/{uid}"] = hub.state.user_data(dev, uid)
            state[f"queue/{dev}/{uid}"] = hub.state.queue_size(dev, uid)
            state[f"time/{dev}/{uid}"] = hub.user_time(dev, uid)
        for channel in CHANNELS:
            state[f"settings/{dev}/{channel}"] = hub.state.pipe_settings(dev, channel)
            state[f"history/{dev}/{channel}"] = hub.state.history(dev, channel)
            state[f"position/{dev}/{channel}"] = hub.state.position(dev, channel)
    return state


def fresh_hub() -> Hub:
    """A hub to restore into (restoring makes no ids nor secrets)."""
    return Hub(password="secret", new_id=_no_ids, new_secret=_no_ids)


def _no_ids() -> str:
    raise AssertionError("restoring made an id")


_redis_dbs = itertools.count(1)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """Opens "the same" store again each call: one MemoryStore object, one SQLite file, one Redis db."""
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis")
        db = next(_redis_dbs) % 15 + 1  # db 0 belongs to the cluster tests' nodes
        url = f"redis://127.0.0.1:{redis.port}/{db}"
        _flush(redis, db)
        return lambda: open_bus(url, "store-test")
    if request.param == "memory":
        memory = MemoryStore()

        @asynccontextmanager
        async def reopen_memory() -> AsyncIterator[Store]:
            yield memory

        return reopen_memory
    return lambda: open_sqlite_store(tmp_path / "store" / "cometql.sqlite3")


def _flush(redis: RedisServer, db: int) -> None:
    """Empty one Redis db (the inline protocol has no SELECT-then-FLUSHDB in one line)."""
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as s:
        s.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
        got = b""
        while got.count(b"\r\n") < 2:
            got += s.recv(100)
        assert got == b"+OK\r\n+OK\r\n", got


def test_scenario_covers_every_record_type() -> None:
    written = {type(rec) for batch in scenario() for rec in batch}
    assert written == set(RECORD_TYPES)


async def test_reopened_store_rebuilds_the_same_hub(open_store: OpenStore) -> None:
    reference = fresh_hub()
    async with open_store() as store:
        for batch in scenario():
            await store.commit(batch)
            reference.restore(batch)
    async with open_store() as store:
        restored = fresh_hub()
        restored.restore(await store.load(), await store.queue_sizes())
    assert durable_state(restored) == durable_state(reference)


async def test_restored_values_are_the_expected_ones(open_store: OpenStore) -> None:
    async with open_store() as store:
        for batch in scenario():
            await store.commit(batch)
    async with open_store() as store:
        hub = fresh_hub()
        hub.restore(await store.load(), await store.queue_sizes())
        queues = {(d, u): [e for _, e in await store.queue_page(d, u, 0, 100)] for d, u in ((0, 5), (0, 6), (7, 5))}
    state = hub.state
    assert [state.auth_hash(0, u) for u in (1, 2, 3)] == ["hash1", "new", None]
    assert state.auth_hash(7, 1) == "hash-of-dev-7"
    assert [state.user_data(0, 1), state.user_data(0, 2), state.user_data(7, 2)] == [
        '{"name": "ann"}', None, "dev seven"]
    assert state.revoked_tokens(0) == ["tok.b", "tok.c"]
    assert state.revoked_tokens(7) == ["tok.a"]
    assert [state.pipe_settings(0, c) for c in ("chat", "gone", "cleared")] == [3, None, 4]
    # offsets count every message stored (trimmed ones too); the first message names the epoch
    assert state.history(0, "chat") == [replace(_hist(n), offset=n) for n in (3, 4, 5)]
    assert state.position(0, "chat") == ("h-chat-1", 5)
    assert state.history(7, "news") == [replace(_hist(n, "news"), offset=n) for n in (2, 3)]
    assert state.history(0, "gone") == [] and state.history(0, "cleared") == []
    assert state.position(0, "gone") is None and state.position(0, "cleared") is None  # a reset ends the epoch
    assert [(e.id, e.offset) for e in state.history(0, "trust_log")] == [
        ("h-trust_log-1", 1), ("h-trust_log-3", 3), ("h-trust_log-4", 4)]
    assert state.position(0, "trust_log") == ("h-trust_log-1", 4)
    assert state.position(7, "empty") == ("epoch-7", 41)
    assert queues == {(0, 5): [_queued(2), _queued(4)], (0, 6): [], (7, 5): [_queued(20)]}
    assert state.queue_size(0, 5) == (2, _queued(2).nbytes + _queued(4).nbytes)
    assert state.queue_size(0, 6) == (0, 0) and state.queue_size(7, 5) == (1, _queued(20).nbytes)
    assert hub.user_time(0, 1) == 1_700_000_600
    assert hub.user_time(7, 4) == 1_700_000_700
    assert hub.user_time(0, 2) == -1


async def test_group_commit_batches_concurrent_writes(tmp_path: Path) -> None:
    writes = 300
    async with open_sqlite_store(tmp_path / "group.sqlite3") as store:
        async with trio.open_nursery() as nursery:
            for uid in range(1, writes + 1):
                nursery.start_soon(store.write, [SetAuth(1, uid, f"h{uid}")])
        assert 0 < store.commits < writes
        loaded = await store.load()
    assert sorted(r.user_id for r in loaded if isinstance(r, SetAuth)) == list(range(1, writes + 1))


async def _set_query_only(store: SQLiteStore, on: bool) -> None:
    """Make the store's own SQLite connection refuse writes (SQLITE_READONLY), or allow them again."""
    assert store._db is not None
    db = store._db
    await trio.to_thread.run_sync(db.execute, f"PRAGMA query_only = {'ON' if on else 'OFF'}")


async def test_write_after_a_failed_write_still_works(tmp_path: Path) -> None:
    path = tmp_path / "fail.sqlite3"
    async with open_sqlite_store(path) as store:
        await store.write([SetAuth(0, 1, "before")])
        await _set_query_only(store, True)
        with pytest.raises(StoreError, match="readonly"):
            await store.write([SetAuth(0, 2, "refused"), SetUserData(0, 2, "refused too")])
        await _set_query_only(store, False)
        await store.write([SetAuth(0, 3, "after")])
    async with open_sqlite_store(path) as store:
        hub = fresh_hub()
        hub.restore(await store.load())
    assert [hub.state.auth_hash(0, u) for u in (1, 2, 3)] == ["before", None, "after"]
    assert hub.state.user_data(0, 2) is None  # the failed batch was rolled back as a whole


async def test_a_record_sqlite_cannot_take_fails_its_write_not_the_store(tmp_path: Path) -> None:
    """An integer beyond 64 bits used to end the writer task, and with it the server."""
    async with open_sqlite_store(tmp_path / "big.sqlite3") as store:
        with pytest.raises(StoreError):
            await store.write([SetAuth(0, 2**70, "too big")])
        await store.write([SetAuth(0, 1, "fine")])
        assert SetAuth(0, 1, "fine") in await store.load()


async def _delete_queue_steps(path: Path, count: int) -> int:
    """SQLite VM steps (in thousands) that deleting ``count`` queued messages of one user by id takes."""
    async with open_sqlite_store(path) as store:
        await store.write([QueueMessage(0, 1, _queued(n)) for n in range(count)])
        assert store._db is not None
        steps = 0

        def tick() -> int:
            nonlocal steps
            steps += 1
            return 0  # go on

        store._db.set_progress_handler(tick, 1000)
        await store.write([DeleteQueued(0, 1, tuple(f"q-{n}" for n in range(count)))])
        store._db.set_progress_handler(None, 0)
        assert await store.queue_page(0, 1, 0, 10) == []
    return steps


async def test_deleting_a_long_queue_by_id_is_linear(tmp_path: Path) -> None:
    """A user with 12,000 queued messages logging in used to stall every durable write for ~13 s:
    each id was looked up by scanning the user's whole queue. Counted in VM steps, not seconds:
    twice the queue must cost about twice the work, not four times."""
    small = await _delete_queue_steps(tmp_path / "small.sqlite3", 2_000)
    large = await _delete_queue_steps(tmp_path / "large.sqlite3", 4_000)
    assert small > 0
    assert large < 2.6 * small, (small, large)


async def test_a_queue_is_read_page_by_page_in_order(open_store: OpenStore) -> None:
    """Pages after a position, oldest first, positions increasing; deleted ids leave a page; the
    sizes are what the hub keeps (count, bytes)."""
    async with open_store() as store:
        await store.commit([QueueMessage(0, 3, _queued(n)) for n in range(25)])
        await store.commit([QueueMessage(0, 4, _queued(99))])
        await store.commit([DeleteQueued(0, 3, ("q-3", "q-11"), _queued(3).nbytes + _queued(11).nbytes)])
    async with open_store() as store:
        got: list[QueuedMessage] = []
        after, positions = 0, []
        while page := await store.queue_page(0, 3, after, 10):
            assert len(page) <= 10
            positions += [seq for seq, _ in page]
            got += [e for _, e in page]
            after = page[-1][0]
        assert got == [_queued(n) for n in range(25) if n not in (3, 11)]
        assert positions == sorted(set(positions))
        await store.commit([QueueMessage(0, 3, _queued(100))])  # after everything read: a later position
        assert [e for _, e in await store.queue_page(0, 3, after, 10)] == [_queued(100)]
        sizes = {(d, u): (n, b) for d, u, n, b in await store.queue_sizes()}
    assert sizes == {(0, 3): (24, sum(_queued(n).nbytes for n in (*range(25), 100) if n not in (3, 11))),
                     (0, 4): (1, _queued(99).nbytes)}


async def test_a_queue_deleted_whole_keeps_positions_growing(open_store: OpenStore) -> None:
    """A reader's position survives DELETE FROM users_messages: the next message comes after it."""
    async with open_store() as store:
        await store.commit([QueueMessage(0, 3, _queued(n)) for n in range(3)])
        last = (await store.queue_page(0, 3, 0, 10))[-1][0]
        await store.commit([DeleteQueued(0, 3, None)])
        assert await store.queue_page(0, 3, 0, 10) == [] and await store.queue_sizes() == []
        await store.commit([QueueMessage(0, 3, _queued(7))])
        assert [(seq > last, e) for seq, e in await store.queue_page(0, 3, 0, 10)] == [(True, _queued(7))]


async def test_redis_hands_a_users_backlog_to_one_node_at_a_time(redis: RedisServer) -> None:
    """A page read to be handed out takes the user's lease; another node is told to wait (not a read
    for SELECT, which hands nothing out), and may read once the lease ends."""
    db = next(_redis_dbs) % 15 + 1
    _flush(redis, db)
    url = f"redis://127.0.0.1:{redis.port}/{db}"
    async with open_bus(url, "node-a") as a, open_bus(url, "node-b") as b:
        await a.commit([QueueMessage(0, 3, _queued(1))])
        assert [e for _, e in await a.queue_page(0, 3, 0, 10)] == [_queued(1)]
        assert [e for _, e in await a.queue_page(0, 3, 0, 10)] == [_queued(1)]  # the holder renews it
        with pytest.raises(QueueClaimed) as claimed:
            await b.queue_page(0, 3, 0, 10)
        assert 0 < claimed.value.retry_after <= 2
        assert [e for _, e in await b.queue_page(0, 3, 0, 10, claim=False)] == [_queued(1)]
        await trio.sleep(claimed.value.retry_after + 0.1)
        assert [e for _, e in await b.queue_page(0, 3, 0, 10)] == [_queued(1)]
        assert await b.queue_page(0, 3, 1_000_000, 10) == []  # an empty page lets the lease go at once
        assert await a.queue_page(0, 3, 1_000_000, 10) == []
