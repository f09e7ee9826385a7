"""SQLite store: the embedded default, one file under the data directory.

Writes are group-committed: every ``commit`` (``write``) call adds its records to a pending
batch and waits; one writer task commits whatever is pending in one
transaction (in a worker thread, so trio keeps serving) and wakes all the
waiters. Under load that turns many small fsync-bound commits into few.
Each call stays a statement of its own: if the batch's transaction fails, it
is rolled back and the calls are retried one transaction each, in order, so a
failing record (disk full, a value SQLite cannot take) fails only its call.
The happy path is one transaction per batch; the retry costs a commit per call
only after a failure. Each call's ``settle`` runs in commit order before the waiters wake.
WAL mode with ``synchronous=NORMAL`` makes a committed transaction survive a
killed process; ``durability="full"`` also survives a power cut, at a cost.

Users' queues are read a page at a time (``queue_page``: the ``queue_user``
index, after a ``seq``) on a second, read-only connection, which sees only
committed transactions (WAL readers never block the writer). The table is the
one earlier versions wrote: their files load as they are.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar, assert_never

import trio

from ..errors import StoreError
from ..hub import Change
from ..hub import records as r
from ..hub.records import HistoryEntry, QueuedMessage, Record
from ._base import QueueSize, Settle, no_settle, records_only

__all__ = ["SQLiteStore", "open_sqlite_store"]

log = logging.getLogger("cometql.store")

_T = TypeVar("_T")

#: How long a batch of lazy writes only (no one waits for them) waits for other writes to join it.
LAZY_S = 0.005

SCHEMA = """
CREATE TABLE IF NOT EXISTS users_auth (dev INTEGER, uid INTEGER, hash TEXT, PRIMARY KEY (dev, uid));
CREATE TABLE IF NOT EXISTS users_data (dev INTEGER, uid INTEGER, data TEXT, PRIMARY KEY (dev, uid));
CREATE TABLE IF NOT EXISTS revoked_tokens (seq INTEGER PRIMARY KEY AUTOINCREMENT, dev INTEGER, token TEXT,
    UNIQUE (dev, token));
CREATE TABLE IF NOT EXISTS pipes_settings (dev INTEGER, channel TEXT, length INTEGER, PRIMARY KEY (dev, channel));
CREATE TABLE IF NOT EXISTS history (seq INTEGER PRIMARY KEY AUTOINCREMENT, dev INTEGER, channel TEXT,
    id TEXT, time INTEGER, event TEXT, message TEXT, user_id INTEGER, ofs INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS channels (dev INTEGER, channel TEXT, epoch TEXT, last INTEGER,
    PRIMARY KEY (dev, channel));
CREATE INDEX IF NOT EXISTS history_channel ON history (dev, channel, seq);
CREATE INDEX IF NOT EXISTS history_id ON history (dev, id);
CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, dev INTEGER, uid INTEGER,
    id TEXT, time INTEGER, event TEXT, message TEXT);
CREATE INDEX IF NOT EXISTS queue_user ON queue (dev, uid, seq);
CREATE INDEX IF NOT EXISTS queue_id ON queue (dev, uid, id);
CREATE TABLE IF NOT EXISTS users_time (dev INTEGER, uid INTEGER, time INTEGER, PRIMARY KEY (dev, uid));
"""


def _apply(db: sqlite3.Connection, rec: Record) -> None:
    """Translate one record into SQL. Runs in the writer thread."""
    match rec:
        case r.SetAuth():
            db.execute("REPLACE INTO users_auth VALUES (?, ?, ?)", (rec.dev_id, rec.user_id, rec.hash))
        case r.DeleteAuth():
            db.execute("DELETE FROM users_auth WHERE dev = ? AND uid = ?", (rec.dev_id, rec.user_id))
        case r.SetUserData():
            db.execute("REPLACE INTO users_data VALUES (?, ?, ?)", (rec.dev_id, rec.user_id, rec.data))
        case r.DeleteUserData():
            db.execute("DELETE FROM users_data WHERE dev = ? AND uid = ?", (rec.dev_id, rec.user_id))
        case r.AddRevokedToken():
            db.execute("INSERT OR IGNORE INTO revoked_tokens (dev, token) VALUES (?, ?)", (rec.dev_id, rec.token))
        case r.DeleteRevokedToken():
            db.execute("DELETE FROM revoked_tokens WHERE dev = ? AND token = ?", (rec.dev_id, rec.token))
        case r.SetPipeSettings():
            db.execute("REPLACE INTO pipes_settings VALUES (?, ?, ?)", (rec.dev_id, rec.channel, rec.length))
        case r.DeletePipeSettings():
            db.execute("DELETE FROM pipes_settings WHERE dev = ? AND channel = ?", (rec.dev_id, rec.channel))
            _clear_history(db, rec.dev_id, rec.channel)
        case r.AppendHistory():
            e = rec.entry
            db.execute(
                "INSERT INTO history (dev, channel, id, time, event, message, user_id, ofs)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (rec.dev_id, rec.channel, e.id, e.time, e.event, e.message, e.user_id, _next_offset(db, rec)),
            )
            if rec.keep:
                db.execute(
                    "DELETE FROM history WHERE dev = ?1 AND channel = ?2 AND seq <= (SELECT seq FROM history"
                    " WHERE dev = ?1 AND channel = ?2 ORDER BY seq DESC LIMIT 1 OFFSET ?3)",
                    (rec.dev_id, rec.channel, rec.keep),
                )
        case r.ChannelPosition():
            db.execute("REPLACE INTO channels VALUES (?, ?, ?, ?)", (rec.dev_id, rec.channel, rec.epoch, rec.offset))
        case r.ClearHistory():
            _clear_history(db, rec.dev_id, rec.channel)
        case r.DeleteHistoryIds():
            db.executemany("DELETE FROM history WHERE dev = ? AND id = ?", [(rec.dev_id, i) for i in rec.ids])
        case r.QueueMessage():
            q = rec.entry
            db.execute(
                "INSERT INTO queue (dev, uid, id, time, event, message) VALUES (?, ?, ?, ?, ?, ?)",
                (rec.dev_id, rec.user_id, q.id, q.time, q.event, q.message),
            )
        case r.DeleteQueued():
            if rec.ids is None:
                db.execute("DELETE FROM queue WHERE dev = ? AND uid = ?", (rec.dev_id, rec.user_id))
            else:
                db.executemany(
                    "DELETE FROM queue WHERE dev = ? AND uid = ? AND id = ?",
                    [(rec.dev_id, rec.user_id, i) for i in rec.ids],
                )
        case r.SetLastSeen():
            db.execute("REPLACE INTO users_time VALUES (?, ?, ?)", (rec.dev_id, rec.user_id, rec.time))
        case _:
            assert_never(rec)


def _next_offset(db: sqlite3.Connection, rec: r.AppendHistory) -> int:
    """The offset of a message appended to a channel, counted as ``DurableState`` counts (a channel
    without a position starts an epoch named after the entry), inside the same transaction."""
    if rec.epoch:  # assigned already; a new epoch means the old stream is gone, as in memory
        args = (rec.dev_id, rec.channel, rec.epoch, rec.entry.offset)
        db.execute("DELETE FROM history WHERE dev = ?1 AND channel = ?2 AND EXISTS (SELECT 1 FROM channels"
                   " WHERE dev = ?1 AND channel = ?2 AND epoch != ?3)", args[:3])
        db.execute("INSERT INTO channels VALUES (?1, ?2, ?3, ?4) ON CONFLICT (dev, channel) DO UPDATE SET"
                   " last = CASE WHEN epoch = ?3 THEN MAX(last, ?4) ELSE ?4 END, epoch = ?3", args)
        return rec.entry.offset
    db.execute("INSERT OR IGNORE INTO channels VALUES (?, ?, ?, 0)", (rec.dev_id, rec.channel, rec.entry.id))
    row = db.execute("UPDATE channels SET last = last + 1 WHERE dev = ? AND channel = ? RETURNING last",
                     (rec.dev_id, rec.channel)).fetchone()
    return int(row[0])


def _clear_history(db: sqlite3.Connection, dev: int, channel: str) -> None:
    """Drop a channel's history and position: its next message starts a new epoch."""
    db.execute("DELETE FROM history WHERE dev = ? AND channel = ?", (dev, channel))
    db.execute("DELETE FROM channels WHERE dev = ? AND channel = ?", (dev, channel))


def _migrate(db: sqlite3.Connection) -> None:
    """Files of the version before channel offsets: number each channel's kept messages 1, 2, ... in
    order and give each channel a fresh epoch (readers of the old version knew none)."""
    if any(row[1] == "ofs" for row in db.execute("PRAGMA table_info(history)")):
        return
    log.info("SQLite store: numbering channel history (channel offsets)")
    db.execute("BEGIN")
    try:
        db.execute("ALTER TABLE history ADD COLUMN ofs INTEGER NOT NULL DEFAULT 0")
        db.execute("UPDATE history SET ofs = (SELECT COUNT(*) FROM history h WHERE h.dev = history.dev"
                   " AND h.channel = history.channel AND h.seq <= history.seq)")
        db.execute("REPLACE INTO channels SELECT dev, channel, lower(hex(randomblob(8))), MAX(ofs)"
                   " FROM history GROUP BY dev, channel")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _queue_sizes(db: sqlite3.Connection) -> list[QueueSize]:
    return list(db.execute("SELECT dev, uid, count(*), coalesce(sum(length(CAST(message AS BLOB))), 0)"
                           " FROM queue GROUP BY dev, uid"))


def _queue_page(db: sqlite3.Connection, dev: int, uid: int, after: int, limit: int) -> list[tuple[int, QueuedMessage]]:
    rows = db.execute("SELECT seq, id, time, event, message FROM queue WHERE dev = ? AND uid = ? AND seq > ?"
                      " ORDER BY seq LIMIT ?", (dev, uid, after, limit))
    return [(seq, QueuedMessage(i, t, e, m)) for seq, i, t, e, m in rows]


def _load(db: sqlite3.Connection) -> list[Record]:
    out: list[Record] = []
    out += [r.SetAuth(d, u, h) for d, u, h in db.execute("SELECT dev, uid, hash FROM users_auth")]
    out += [r.SetUserData(d, u, x) for d, u, x in db.execute("SELECT dev, uid, data FROM users_data")]
    out += [r.AddRevokedToken(d, t) for d, t in db.execute("SELECT dev, token FROM revoked_tokens ORDER BY seq")]
    out += [r.SetPipeSettings(d, c, n) for d, c, n in db.execute("SELECT dev, channel, length FROM pipes_settings")]
    positions = db.execute("SELECT dev, channel, epoch, last FROM channels")
    out += [r.ChannelPosition(d, c, e, n) for d, c, e, n in positions]
    out += [
        r.AppendHistory(d, c, HistoryEntry(i, t, e, m, u, o), 0, epoch)
        for d, c, i, t, e, m, u, o, epoch in db.execute(
            "SELECT h.dev, h.channel, id, time, event, message, user_id, ofs, c.epoch FROM history h"
            " JOIN channels c ON c.dev = h.dev AND c.channel = h.channel ORDER BY seq"
        )
    ]
    out += [r.SetLastSeen(d, u, t) for d, u, t in db.execute("SELECT dev, uid, time FROM users_time")]
    return out


class _Write:
    """One ``write`` call (one statement's records) and how it ended."""

    __slots__ = ("records", "settle", "error")

    def __init__(self, records: Sequence[Record], settle: Settle) -> None:
        self.records = records
        self.settle = settle
        self.error: BaseException | None = None


class SQLiteStore:
    """Durable records in one SQLite file, written by a single group-commit task."""

    def __init__(self, path: Path, *, durability: str = "normal") -> None:
        self.path = path
        self.description = f"sqlite:{path}"
        self._durability = durability
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None  # queue pages: sees committed transactions only
        self._reading = trio.Lock()
        self._pending: list[_Write] = []
        self._batch = trio.Event()  # set when the next group commit has ended
        self._wakeup = trio.Event()
        self._urgent = trio.Event()  # a pending write has a waiter that should not wait for company
        self._writer_scope: trio.CancelScope | None = None
        self.commits = 0

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if self._durability == 'full' else 'NORMAL'}")
        db.executescript(SCHEMA)
        _migrate(db)
        self._db = db
        self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)

    async def load(self) -> list[Record]:
        assert self._db is not None
        try:
            return await trio.to_thread.run_sync(_load, self._db)
        except sqlite3.DatabaseError as exc:  # a damaged file: one clear line, not a traceback
            raise StoreError(damaged(self.path, exc)) from exc

    async def queue_sizes(self) -> list[QueueSize]:
        return await self._read(_queue_sizes)

    async def queue_page(self, dev_id: int, user_id: int, after: int, limit: int, *,
                         claim: bool = True) -> list[tuple[int, QueuedMessage]]:
        return await self._read(_queue_page, dev_id, user_id, after, limit)

    async def _read(self, query: Callable[..., _T], *args: object) -> _T:
        async with self._reading:  # one connection: one reader at a time
            assert self._reader is not None
            try:
                return await trio.to_thread.run_sync(query, self._reader, *args)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store failed: {exc}") from exc

    async def commit(self, changes: Sequence[Change], settle: Settle = no_settle, *, lazy: bool = False) -> None:
        await self.write(records_only(changes), settle, lazy=lazy)

    async def write(self, records: Sequence[Record], settle: Settle = no_settle, *, lazy: bool = False) -> None:
        """Make records durable (in the next group commit), all or none; raises ``StoreError`` if that
        fails. ``settle`` is told the outcome in commit order, even if this waiter is cancelled.
        ``lazy``: no one waits for it (deleting delivered messages): its batch may wait ``LAZY_S`` for
        company, so that thousands of acks a second share transactions."""
        if not records:
            return
        write = _Write(records, settle)
        self._pending.append(write)
        batch = self._batch
        self._wakeup.set()
        if not lazy:
            self._urgent.set()
        await batch.wait()
        if write.error is not None:
            raise StoreError(f"SQLite store failed: {write.error}")

    async def probe(self) -> str | None:
        """An empty transaction through the writer, like any commit: the canary's proof that the
        store takes writes (raises ``StoreError`` if it cannot, e.g. another process holds the lock)."""
        write = _Write((), no_settle)
        self._pending.append(write)
        batch = self._batch
        self._wakeup.set()
        await batch.wait()
        if write.error is not None:
            raise StoreError(f"SQLite store failed: {write.error}")
        return None

    def _commit(self, writes: list[_Write]) -> None:
        """The batch in one transaction; if that fails, each write in its own (only failing ones fail)."""
        db = self._db
        assert db is not None
        try:
            self._transaction(db, [rec for w in writes for rec in w.records])
            return
        except Exception as exc:
            if len(writes) == 1:
                writes[0].error = exc
                return
        for w in writes:
            try:
                self._transaction(db, w.records)
            except Exception as exc:
                w.error = exc

    @staticmethod
    def _transaction(db: sqlite3.Connection, records: Sequence[Record]) -> None:
        db.execute("BEGIN IMMEDIATE")  # the write lock now: an empty one (the canary's probe) proves it can be had
        try:
            for rec in records:
                _apply(db, rec)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a failed COMMIT (disk full) may have rolled back already
                db.execute("ROLLBACK")
            raise

    async def _writer(self) -> None:
        """Commit pending records batch by batch.

        Shielded: on shutdown the sessions being closed still write (last-seen
        times); the store stops the writer itself once they are done.
        """
        with trio.CancelScope(shield=True) as scope:
            self._writer_scope = scope
            while True:
                await self._wakeup.wait()
                if not self._urgent.is_set():
                    with trio.move_on_after(LAZY_S):
                        await self._urgent.wait()
                self._wakeup = trio.Event()
                self._urgent = trio.Event()
                writes, self._pending = self._pending, []
                batch, self._batch = self._batch, trio.Event()
                try:
                    await trio.to_thread.run_sync(self._commit, writes)
                    self.commits += 1
                except Exception as exc:  # sqlite3.Error, or a value SQLite cannot take (OverflowError):
                    for w in writes:  # fail this batch's writers, never the writer task (it would end the server)
                        w.error = w.error or exc
                finally:
                    _settle(writes)
                    batch.set()

    async def _stop(self) -> None:
        """Let the writer commit what is pending, then stop it."""
        if self._pending:
            batch = self._batch
            self._wakeup.set()
            self._urgent.set()
            await batch.wait()
        if self._writer_scope is not None:
            self._writer_scope.cancel()

    def _close(self) -> None:
        for db in (self._db, self._reader):
            if db is not None:
                db.close()
        self._db = self._reader = None


def _settle(writes: list[_Write]) -> None:
    """Tell each write's ``settle`` its outcome, in commit order (a failing one never stops the writer)."""
    for w in writes:
        try:
            w.settle(w.error is None)
        except Exception:  # pragma: no cover - settle is the hub applying records: a bug, logged
            log.exception("applying stored records failed")


def damaged(path: Path, exc: Exception) -> str:
    """What to do about a store file SQLite cannot read (the server does not start on it)."""
    return (f"the SQLite store {path} is damaged ({exc}); the server will not start on it. Stop every "
            f"process using it, then restore it from a backup, or try `sqlite3 {path} .recover > dump.sql`, "
            f"or move it away to start with an empty store")


@asynccontextmanager
async def open_sqlite_store(path: Path | str, *, durability: str = "normal") -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(Path(path), durability=durability)
    try:
        await trio.to_thread.run_sync(store._open)
    except sqlite3.DatabaseError as exc:
        raise StoreError(damaged(Path(path), exc)) from exc
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open SQLite store {path}: {exc}") from exc
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store._writer)
            try:
                yield store
            finally:
                with trio.CancelScope(shield=True):
                    await store._stop()
    finally:
        store._close()
