"""``stats_history`` in Redis: the rows, and one sample per interval for the whole cluster.

Keys (beside the record keys of ``store.redis``)::

    cq:stats:<dev>          ZSET  score = time, member = JSON [time, channel, sessions, users, published, delivered]
    cq:stats:devs           SET   the devs with a cq:stats:<dev> key (pruning needs no SCAN)
    cq:stats:t:<at>         HASH  "p:<dev>:<channel>" / "d:<dev>:<channel>" -> messages published / delivered
                                  in the interval ending at <at>, summed over the nodes (HINCRBY); expires
    cq:stats:shares         ZSET  the <at> of every cq:stats:t:<at> not collected yet (score <at>)
    cq:stats:claim:<at>     STRING the node that writes the sample at <at> (SET NX, expires)

Every node adds its counts at the boundary ``at`` (``share_traffic``) and
tries ``claim_sample(at)``; the one node whose ``SET NX`` succeeds waits a
grace period (the others' shares arrive), reads and deletes the hash
(``collect_traffic``) and writes the rows, with presence from its own hub,
which sees every node's sessions. So each minute has one row per channel for
the whole cluster, and ``users`` counts a user online on two nodes once. A
share that arrives after its minute was collected (a node late past the
grace) is not lost: the next collection takes every share up to its own
boundary, so the counts land one minute late and every total stays exact.
Shares and collections are each one ``MULTI``, so they never interleave.

Its own connection, used one call at a time (a lock): a statement that reads
``stats_history`` waits at most for a sample's write. A lost connection fails
that call (``StoreError``) and the next one reconnects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import orjson
import trio

from ..errors import StoreError
from ..hub import Counts, StatsRow
from ..redisurl import RedisAddress
from .resp import Command, RedisConnection, RedisDown, Reply, ReplyError

__all__ = ["RedisStats", "open_redis_stats"]

DEVS = "cq:stats:devs"
SHARES = "cq:stats:shares"


def rows_key(dev_id: int) -> str:
    return f"cq:stats:{dev_id}"


def traffic_key(at: int) -> str:
    return f"cq:stats:t:{at}"


def claim_key(at: int) -> str:
    return f"cq:stats:claim:{at}"


def _member(row: StatsRow) -> bytes:
    return orjson.dumps([row.time, row.channel, row.sessions, row.users, row.published, row.delivered])


def _add_fields(counts: dict[tuple[int, str], tuple[int, int]], items: list[bytes]) -> None:
    """Add one share hash (HGETALL's flat field, value list) to ``counts``."""
    for i in range(0, len(items), 2):
        try:
            kind, dev, channel = items[i].decode().split(":", 2)
            key, value = (int(dev), channel), int(items[i + 1])
        except ValueError:  # not written by a node
            continue
        published, delivered = counts.get(key, (0, 0))
        counts[key] = (published + value, delivered) if kind == "p" else (published, delivered + value)


def _decode(dev_id: int, members: list[bytes], channel: str | None) -> list[StatsRow]:
    rows = [StatsRow(dev_id, *orjson.loads(m)) for m in members]
    if channel is not None:
        rows = [r for r in rows if r.channel == channel]
    return sorted(rows, key=lambda r: (r.time, r.channel))


class RedisStats:
    """The StatsStore of a cluster node."""

    def __init__(self, address: RedisAddress, node_id: str, *, keep_shares: int = 600) -> None:
        self.address = address
        self.node_id = node_id
        self.description = f"{address}"
        #: Seconds a share or a claim outlives its interval (a sampler that died leaves them behind).
        self.keep_shares = keep_shares
        self._conn: RedisConnection | None = None
        self._lock = trio.Lock()

    async def _pipeline(self, commands: Sequence[Command]) -> list[Reply]:
        if not commands:
            return []
        async with self._lock:
            try:
                if self._conn is None:
                    self._conn = await RedisConnection.open(self.address, name=f"cometql-{self.node_id}-stats")
                replies = await self._conn.pipeline(commands)
            except RedisDown as exc:
                self._conn = None  # the connection aborted itself; the next call reconnects
                raise StoreError(f"Redis statistics store ({self.address}): {exc}") from exc
            except BaseException:
                self._conn = None  # cancelled half-way: the pipeline aborted the connection
                raise
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise StoreError(f"Redis refused a statistics command: {reply}")
        return replies

    # ------------------------------------------------------------ one sample per cluster

    async def share_traffic(self, at: int, counts: Counts) -> None:
        key = traffic_key(at)
        commands: list[Command] = []
        for (dev, channel), (published, delivered) in counts.items():
            if published:
                commands.append(["HINCRBY", key, f"p:{dev}:{channel}", published])
            if delivered:
                commands.append(["HINCRBY", key, f"d:{dev}:{channel}", delivered])
        if commands:
            await self._pipeline([["MULTI"], *commands, ["EXPIRE", key, self.keep_shares], ["ZADD", SHARES, at, at],
                                  ["EXEC"]])

    async def claim_sample(self, at: int) -> bool:
        (reply,) = await self._pipeline([["SET", claim_key(at), self.node_id, "NX", "EX", self.keep_shares]])
        return reply is not None

    async def collect_traffic(self, at: int) -> Counts:
        (boundaries,) = await self._pipeline([["ZRANGEBYSCORE", SHARES, "-inf", at]])
        keys = [traffic_key(int(b)) for b in boundaries or ()]
        if not keys:
            return {}
        reads: list[Command] = [["HGETALL", k] for k in keys]
        commands: list[Command] = [["MULTI"], *reads, ["DEL", *keys], ["ZREM", SHARES, *boundaries], ["EXEC"]]
        replies = await self._pipeline(commands)
        counts: dict[tuple[int, str], tuple[int, int]] = {}
        for fields in replies[-1][: len(keys)]:
            _add_fields(counts, fields or [])
        return counts

    # --------------------------------------------------------------------------- rows

    async def append_stats(self, rows: Sequence[StatsRow]) -> None:
        by_dev: dict[int, list[StatsRow]] = {}
        for row in rows:
            by_dev.setdefault(row.dev_id, []).append(row)
        commands: list[Command] = []
        for dev, dev_rows in by_dev.items():
            key = rows_key(dev)
            times = {r.time for r in dev_rows}
            for t in times:  # writing a time again replaces its rows
                commands.append(["ZREMRANGEBYSCORE", key, t, t])
            pairs: list[bytes | int] = []
            for r in dev_rows:
                pairs += [r.time, _member(r)]
            commands.append(["ZADD", key, *pairs])
        if by_dev:
            commands.append(["SADD", DEVS, *by_dev])
        await self._pipeline(commands)

    async def read_stats(self, dev_id: int, since: int | None = None, until: int | None = None,
                         channel: str | None = None) -> list[StatsRow]:
        low = "-inf" if since is None else since
        high = "+inf" if until is None else until
        (members,) = await self._pipeline([["ZRANGEBYSCORE", rows_key(dev_id), low, high]])
        # days of rows: decoded in a worker thread, not on the loop that delivers messages
        return await trio.to_thread.run_sync(_decode, dev_id, members or [], channel)

    async def prune_stats(self, before: int) -> None:
        (devs,) = await self._pipeline([["SMEMBERS", DEVS]])
        await self._pipeline([["ZREMRANGEBYSCORE", rows_key(int(d)), "-inf", f"({before}"] for d in devs or ()])

    async def aclose(self) -> None:
        async with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await conn.aclose()


@asynccontextmanager
async def open_redis_stats(address: RedisAddress, node_id: str) -> AsyncIterator[RedisStats]:
    stats = RedisStats(address, node_id)
    try:
        yield stats
    finally:
        with trio.CancelScope(shield=True):
            await stats.aclose()
