"""Where ``stats_history`` samples are kept: a small store API of their own, next to the records.

Samples are not hub state: nothing restores them into memory, no statement
waits for them, and losing a minute loses nothing else. So they are not
``Record``s going through the hub's two-phase commit; a ``StatsStore`` has
six methods, in two groups:

* **rows**: ``append_stats`` (a sample's rows; writing the same dev, time and
  channel again replaces the row), ``read_stats`` (one dev's rows, optionally
  between two times and for one channel, oldest first), ``prune_stats``
  (drop rows older than a time: the retention);
* **one sample for the whole cluster**: each node hands its traffic counts of
  the interval ending at ``at`` to ``share_traffic``; the node that wins
  ``claim_sample(at)`` writes the sample, with ``collect_traffic(at)``, the sum
  over the nodes. A single node's stores keep the counts in memory and always
  win (``LocalSampling``); the Redis one (``stats_redis``) does it in Redis.

``MemoryStats`` keeps rows in a list (tests, tools); ``SQLiteStats`` keeps them
in ``stats.sqlite3`` next to the record store's file: its own file and
connection, so sampling and analytic reads never hold up a statement's commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import trio

from ..errors import StoreError
from ..hub import Counts, StatsRow

__all__ = ["LocalSampling", "MemoryStats", "SQLiteStats", "StatsStore", "open_sqlite_stats"]

_T = TypeVar("_T")


class StatsStore(Protocol):
    description: str

    async def share_traffic(self, at: int, counts: Counts) -> None:
        """This node's traffic over the interval that ends at ``at``."""
        ...

    async def claim_sample(self, at: int) -> bool:
        """True for exactly one node of the cluster: the one that writes the sample at ``at``."""
        ...

    async def collect_traffic(self, at: int) -> Counts:
        """Every node's shared traffic for ``at`` and any earlier boundary not collected yet (a share that
        came late), summed; once: the counts are gone afterwards."""
        ...

    async def append_stats(self, rows: Sequence[StatsRow]) -> None: ...

    async def read_stats(self, dev_id: int, since: int | None = None, until: int | None = None,
                         channel: str | None = None) -> list[StatsRow]:
        """One dev's rows with ``since <= time <= until`` (None: unbounded), oldest first."""
        ...

    async def prune_stats(self, before: int) -> None:
        """Drop every row with ``time < before``."""
        ...


class LocalSampling:
    """The cluster half for a single node: the counts stay in memory and this node always samples."""

    def __init__(self) -> None:
        self._shared: dict[int, Counts] = {}

    async def share_traffic(self, at: int, counts: Counts) -> None:
        shared = self._shared.setdefault(at, {})
        for key, (p, d) in counts.items():
            if not p and not d:
                continue
            old_p, old_d = shared.get(key, (0, 0))
            shared[key] = (old_p + p, old_d + d)

    async def claim_sample(self, at: int) -> bool:
        return True

    async def collect_traffic(self, at: int) -> Counts:
        counts: Counts = {}
        for boundary in sorted(t for t in self._shared if t <= at):  # and a sample never written: not lost
            for key, (p, d) in self._shared.pop(boundary).items():
                old_p, old_d = counts.get(key, (0, 0))
                counts[key] = (old_p + p, old_d + d)
        return counts


def _in_range(row: StatsRow, since: int | None, until: int | None, channel: str | None) -> bool:
    return ((since is None or row.time >= since) and (until is None or row.time <= until)
            and (channel is None or row.channel == channel))


class MemoryStats(LocalSampling):
    """Rows in a dict, lost at exit: for tests and for a node built without a store."""

    description = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[int, int, str], StatsRow] = {}

    async def append_stats(self, rows: Sequence[StatsRow]) -> None:
        for row in rows:
            self.rows[(row.dev_id, row.time, row.channel)] = row

    async def read_stats(self, dev_id: int, since: int | None = None, until: int | None = None,
                         channel: str | None = None) -> list[StatsRow]:
        found = [r for r in self.rows.values() if r.dev_id == dev_id and _in_range(r, since, until, channel)]
        return sorted(found, key=lambda r: (r.time, r.channel))

    async def prune_stats(self, before: int) -> None:
        self.rows = {k: r for k, r in self.rows.items() if r.time >= before}


_SCHEMA = """
CREATE TABLE IF NOT EXISTS stats_history (dev INTEGER NOT NULL, time INTEGER NOT NULL, channel TEXT NOT NULL,
    sessions INTEGER NOT NULL, users INTEGER NOT NULL, published INTEGER NOT NULL, delivered INTEGER NOT NULL,
    PRIMARY KEY (dev, time, channel)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stats_history_time ON stats_history (time);
"""
_COLUMNS = "dev, time, channel, sessions, users, published, delivered"


class SQLiteStats(LocalSampling):
    """Rows in their own SQLite file; every call runs in a worker thread, one at a time."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.description = f"sqlite:{path}"
        self._db: sqlite3.Connection | None = None
        self._lock = trio.Lock()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._db = db

    async def _run(self, what: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        db = self._db
        if db is None:
            raise StoreError("the statistics store is closed")
        async with self._lock:
            try:
                return await trio.to_thread.run_sync(fn, db)
            except (sqlite3.Error, OverflowError) as exc:
                raise StoreError(f"SQLite statistics store could not {what}: {exc}") from exc

    async def append_stats(self, rows: Sequence[StatsRow]) -> None:
        values = [(r.dev_id, r.time, r.channel, r.sessions, r.users, r.published, r.delivered) for r in rows]

        def write(db: sqlite3.Connection) -> None:
            with db:  # one transaction
                db.executemany(f"REPLACE INTO stats_history ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", values)

        if values:
            await self._run("write a sample", write)

    async def read_stats(self, dev_id: int, since: int | None = None, until: int | None = None,
                         channel: str | None = None) -> list[StatsRow]:
        sql = f"SELECT {_COLUMNS} FROM stats_history WHERE dev = ? AND time BETWEEN ? AND ?"
        args: list[int | str] = [dev_id, -(2**63) if since is None else since, 2**63 - 1 if until is None else until]
        if channel is not None:
            sql += " AND channel = ?"
            args.append(channel)

        def read(db: sqlite3.Connection) -> list[StatsRow]:
            return [StatsRow(*row) for row in db.execute(sql + " ORDER BY time, channel", args)]

        return await self._run("read", read)

    async def prune_stats(self, before: int) -> None:
        def prune(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM stats_history WHERE time < ?", (before,))

        await self._run("drop old rows", prune)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


@asynccontextmanager
async def open_sqlite_stats(path: Path | str) -> AsyncIterator[SQLiteStats]:
    stats = SQLiteStats(Path(path))
    try:
        await trio.to_thread.run_sync(stats._open)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the SQLite statistics store {path}: {exc}") from exc
    try:
        yield stats
    finally:
        async with stats._lock:  # a read or write in its thread finishes first
            stats._close()
