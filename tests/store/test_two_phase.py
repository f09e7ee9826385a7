"""Two-phase statements through the engine and the real stores, with an injected store failure.

A statement's records are written first and applied to memory only once stored
(``Hub.settle``, called by the store in its commit order). Here one statement
of a group commit fails (SQLite: an injected "disk full" for its records;
Redis: a key of the wrong type): it alone raises ``StoreError``, its neighbours
in the same batch are stored, memory is what the store holds, and nothing it
would have delivered is ever delivered. The real full filesystem is
``tests/ops/test_disk_full.py``.
"""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest
import trio
import trio.testing

from cometql.cluster import open_bus
from cometql.engine import Engine
from cometql.errors import StoreError
from cometql.hub import ConnInfo, Hub, ListSubscriber, QueuedMessage, Record
from cometql.hub.records import QueueMessage, SetAuth
from cometql.redisurl import RedisAddress
from cometql.store import Store, open_sqlite_store
from cometql.store import sqlite as sqlite_module
from cometql.store.resp import RedisConnection

from ..redis_server import RedisServer

NOW = 1_700_000_000
_ids = itertools.count(1)


def make_hub() -> Hub:
    return Hub(password="p", new_id=lambda: f"m{next(_ids)}", new_secret=lambda: "s" * 32)


@pytest.fixture
def refuse_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite fails ("disk full") on any record whose text says "refused"; the others go through."""
    real = sqlite_module._apply

    def apply(db: sqlite3.Connection, rec: Record) -> None:
        if "refused" in repr(rec):
            raise sqlite3.OperationalError("database or disk is full")
        real(db, rec)

    monkeypatch.setattr(sqlite_module, "_apply", apply)


async def stored_queue(store: Store, dev_id: int, user_id: int) -> list[QueuedMessage]:
    """A user's whole queue as the store holds it, page by page."""
    out: list[QueuedMessage] = []
    after = 0
    while page := await store.queue_page(dev_id, user_id, after, 7):
        out += [e for _, e in page]
        after = page[-1][0]
    return out


async def _outcomes(calls: list[tuple[str, object]]) -> dict[str, str]:
    """Run async calls concurrently (so they share group commits): name -> "ok" or the error text."""
    got: dict[str, str] = {}

    async def run(name: str, call: object) -> None:
        try:
            await call  # type: ignore[misc]
            got[name] = "ok"
        except StoreError as exc:
            got[name] = str(exc)

    async with trio.open_nursery() as nursery:
        for name, call in calls:
            nursery.start_soon(run, name, call)
    return got


async def test_sqlite_fails_only_the_failing_write_of_a_group_commit(tmp_path: Path, refuse_marked: None) -> None:
    settled: list[tuple[str, bool]] = []
    names = [f"{'refused' if n % 3 == 1 else 'kept'}-{n}" for n in range(30)]
    async with open_sqlite_store(tmp_path / "s.sqlite3") as store:
        calls = [(name, store.write([QueueMessage(1, 1, QueuedMessage(name, NOW, "e", name))],
                                    lambda ok, name=name: settled.append((name, ok)))) for name in names]
        got = await _outcomes(calls)
        assert store.commits < len(names)  # they did share batches
        loaded = [e.id for e in await stored_queue(store, 1, 1)]
    assert {n for n, v in got.items() if v != "ok"} == {n for n in names if n.startswith("refused")}
    assert all("disk is full" in v for v in got.values() if v != "ok")
    assert sorted(settled) == sorted((n, n.startswith("kept")) for n in names)
    assert [n for n, ok in settled if ok] == loaded  # settled in the order the store committed them


async def test_sqlite_happy_path_is_one_transaction_per_batch(tmp_path: Path) -> None:
    async with open_sqlite_store(tmp_path / "s.sqlite3") as store:
        statements: list[str] = []
        assert store._db is not None
        store._db.set_trace_callback(statements.append)
        async with trio.open_nursery() as nursery:
            for uid in range(1, 21):
                nursery.start_soon(store.write, [SetAuth(1, uid, "h")])
        store._db.set_trace_callback(None)
        assert statements.count("BEGIN IMMEDIATE") == statements.count("COMMIT") == store.commits < 20
        assert not [s for s in statements if "SAVEPOINT" in s or s == "ROLLBACK"]


def _online(hub: Hub, user: int) -> ListSubscriber:
    return ListSubscriber(next(_ids) + 10_000, 1, user, ConnInfo())


async def test_engine_refused_statements_leave_memory_and_deliveries_untouched(
        tmp_path: Path, refuse_marked: None) -> None:
    hub = make_hub()
    async with open_sqlite_store(tmp_path / "e.sqlite3") as store:
        engine = Engine(hub, store, clock=lambda: NOW)
        watcher = _online(hub, 0)
        await engine.apply(hub.connect(watcher, NOW))
        await engine.apply(hub.subscribe(watcher, ["trust_log"], NOW))
        await engine.apply(hub.publish(1, "trust_log", "e", "first", NOW))
        # concurrent statements, sharing group commits: every third one is refused by the store
        messages = [f"{'refused' if n % 3 == 1 else 'kept'} {n}" for n in range(24)]
        calls = [(m, engine.apply(hub.send_to_user(1, 7, "e", m, NOW))) for m in messages]
        calls += [(f"pub {m}", engine.apply(hub.publish(1, "trust_log", "e", m, NOW))) for m in messages]
        got = await _outcomes(calls)
        refused = {m for m in messages if m.startswith("refused")}
        assert {n for n, v in got.items() if v != "ok"} == refused | {f"pub {m}" for m in refused}
        assert store.commits < len(calls)
        # memory holds exactly what the store holds, in the store's order
        queued = [q.message for q in await stored_queue(store, 1, 7)]
        history = [h.message for h in hub.state.history(1, "trust_log")]
        assert hub.state.queue_size(1, 7) == (len(queued), sum(len(m) for m in queued))
        assert sorted(queued) == sorted(set(messages) - refused)
        assert history[0] == "first" and sorted(history[1:]) == sorted(set(messages) - refused)
        assert hub.statistics().queued_messages == len(queued)
        # nothing refused was delivered, nor is it when the user connects
        assert not [f for f in watcher.frames if b"refused" in f]
        assert len(watcher.frames) == len(history)  # "first" and every stored publish, nothing else
        tab = _online(hub, 7)
        await engine.apply(hub.connect(tab, NOW + 1))
        assert [m for m in messages if any(m.encode() in f for f in tab.frames)] == sorted(
            set(messages) - refused, key=messages.index)
        assert hub.state.queue_size(1, 7) == (0, 0) and await stored_queue(store, 1, 7) == []


async def test_engine_hands_a_message_stored_after_its_user_connected(tmp_path: Path) -> None:
    """The flush at connect cannot see a message still in flight; it is handed out when stored."""
    hub = make_hub()
    async with open_sqlite_store(tmp_path / "late.sqlite3") as store:
        engine = Engine(hub, store, clock=lambda: NOW)
        tab = _online(hub, 7)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(engine.apply, hub.send_to_user(1, 7, "e", "late", NOW))  # queued: user offline
            await trio.testing.wait_all_tasks_blocked()  # its write is pending in the store
            await engine.apply(hub.connect(tab, NOW))
        assert [b"late" in f for f in tab.frames] == [True]
        assert hub.state.queue_size(1, 7) == (0, 0) and await stored_queue(store, 1, 7) == []


async def test_redis_fails_only_the_statement_whose_command_redis_refused(redis: RedisServer) -> None:
    url = f"redis://127.0.0.1:{redis.port}/14"
    conn = await RedisConnection.open(RedisAddress.parse(url))
    try:
        await conn.pipeline([["FLUSHDB"], ["SET", "cq:q:1:666", "not a hash"]])  # user 666's queue: wrong type
    finally:
        await conn.aclose()
    settled: list[tuple[str, bool]] = []
    async with open_bus(url, "two-phase") as bus:
        users = [5, 666, 6, 7]
        calls = [(str(u), bus.commit([QueueMessage(1, u, QueuedMessage(f"q{u}", NOW, "e", "m"))],
                                     lambda ok, u=u: settled.append((str(u), ok)))) for u in users]
        got = await _outcomes(calls)
    assert {u for u, v in got.items() if v != "ok"} == {"666"} and "WRONGTYPE" in got["666"]
    assert sorted(settled) == sorted((str(u), u != 666) for u in users)
    conn = await RedisConnection.open(RedisAddress.parse(url))
    try:  # (no ``load``: Redis has no rollback, so the refused statement's SADD of its key stands)
        assert await conn.pipeline([["HLEN", f"cq:q:1:{u}"] for u in (5, 6, 7)]) == [1, 1, 1]
    finally:
        await conn.aclose()
