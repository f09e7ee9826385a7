"""Redis store: durable state and the cluster bus, shared by every node.

Layout (all keys start with ``cq:``)::

    cq:auth, cq:udata, cq:seen     HASH "dev:user" -> hash / data / last-seen time
    cq:revoked                     HASH "dev:token" -> insertion time (ns)
    cq:settings                    HASH "dev:channel" -> history length
    cq:h:<dev>:<channel>           LIST of history entries, capped (LTRIM)
    cq:q:<dev>:<user>              HASH message id -> queued message
    cq:hkeys, cq:qkeys             SET of the history / queue keys (no SCAN at start-up)
    cq:node:<node>                 HASH conn id -> that node's live session (expires)
    cq:nodes                       ZSET node -> last heartbeat (ms)
    cq:bus                         STREAM of batches: records and cluster events, in order

Why a stream, not pub/sub: a node that loses its connection resumes reading
after the last entry it saw, so a Redis hiccup delays messages instead of
dropping them; with pub/sub, whatever was published meanwhile is gone for
that node. The cost is one XADD (~same as PUBLISH) and a capped stream.

Every write is group-committed: whatever records and events are pending go
out as one ``MULTI`` (the materialised keys *and* one XADD of the batch), so
the keys and the stream never disagree, and an INSERT that queues a message is
acknowledged only once Redis has taken it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import trio

from ..errors import StoreError
from ..hub import HistoryEntry, QueuedMessage, Record, SessionClosed, SessionOpened, SessionSubscribed
from ..hub import _records as R
from . import _codec
from ._resp import Arg, RedisAddress, RedisConnection, RedisDown, ReplyError

__all__ = ["RedisStore", "open_redis_store"]

log = logging.getLogger("cometql.redis")

BUS = "cq:bus"
NODES = "cq:nodes"
#: Bus entries Redis keeps (approximately). Each entry is one batch (often many messages); what a node
#: can catch up on after losing its connection. Bounded so that big messages cannot fill Redis' memory.
STREAM_MAXLEN = 20_000

_DELETE_HISTORY_IDS = """
local prefix = ARGV[1]
local ids = {}
for i = 2, #ARGV do ids[ARGV[i]] = true end
local removed = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if string.sub(member, 1, #prefix) == prefix then
    local key = 'cq:h:' .. member
    for _, item in ipairs(redis.call('LRANGE', key, 0, -1)) do
      if ids[cjson.decode(item)[1]] then removed = removed + redis.call('LREM', key, 0, item) end
    end
  end
end
return removed
"""

#: Values waiting for Redis beyond which writers wait (``submit``) instead of queueing (``post``):
#: during an outage, publishes are held up to this many, then refused after the write timeout.
MAX_UNSENT = 100_000

#: Nodes silent this long leave the ``cq:nodes`` index (every restart adds one: a new node id).
NODES_FORGET_MS = 3_600_000

Command = list[Arg]


def node_key(node: str) -> str:
    return f"cq:node:{node}"


def _record_commands(rec: Record) -> list[Command]:
    """The Redis commands that make one record durable (inside the batch's MULTI)."""
    t = type(rec)
    if t is R.SetAuth:
        return [["HSET", "cq:auth", f"{rec.dev_id}:{rec.user_id}", rec.hash]]
    if t is R.DeleteAuth:
        return [["HDEL", "cq:auth", f"{rec.dev_id}:{rec.user_id}"]]
    if t is R.SetUserData:
        return [["HSET", "cq:udata", f"{rec.dev_id}:{rec.user_id}", rec.data]]
    if t is R.DeleteUserData:
        return [["HDEL", "cq:udata", f"{rec.dev_id}:{rec.user_id}"]]
    if t is R.AddRevokedToken:
        return [["HSETNX", "cq:revoked", f"{rec.dev_id}:{rec.token}", time.time_ns()]]
    if t is R.DeleteRevokedToken:
        return [["HDEL", "cq:revoked", f"{rec.dev_id}:{rec.token}"]]
    if t is R.SetPipeSettings:
        return [["HSET", "cq:settings", f"{rec.dev_id}:{rec.channel}", rec.length]]
    if t is R.DeletePipeSettings:
        member = f"{rec.dev_id}:{rec.channel}"
        return [["HDEL", "cq:settings", member], ["DEL", f"cq:h:{member}"], ["SREM", "cq:hkeys", member]]
    if t is R.AppendHistory:
        member = f"{rec.dev_id}:{rec.channel}"
        e = rec.entry
        cmds: list[Command] = [["RPUSH", f"cq:h:{member}", orjson.dumps([e.id, e.time, e.event, e.message, e.user_id])],
                               ["SADD", "cq:hkeys", member]]
        if rec.keep:
            cmds.append(["LTRIM", f"cq:h:{member}", -rec.keep, -1])
        return cmds
    if t is R.ClearHistory:
        member = f"{rec.dev_id}:{rec.channel}"
        return [["DEL", f"cq:h:{member}"], ["SREM", "cq:hkeys", member]]
    if t is R.DeleteHistoryIds:
        return [["EVAL", _DELETE_HISTORY_IDS, 1, "cq:hkeys", f"{rec.dev_id}:", *rec.ids]] if rec.ids else []
    if t is R.QueueMessage:
        member = f"{rec.dev_id}:{rec.user_id}"
        e = rec.entry
        value = orjson.dumps([time.time_ns(), e.id, e.time, e.event, e.message])
        return [["HSET", f"cq:q:{member}", e.id, value], ["SADD", "cq:qkeys", member]]
    if t is R.DeleteQueued:
        member = f"{rec.dev_id}:{rec.user_id}"
        if rec.ids is None:
            return [["DEL", f"cq:q:{member}"], ["SREM", "cq:qkeys", member]]
        return [["HDEL", f"cq:q:{member}", *rec.ids]] if rec.ids else []
    if t is R.SetLastSeen:
        return [["HSET", "cq:seen", f"{rec.dev_id}:{rec.user_id}", rec.time]]
    raise TypeError(f"not a hub record: {rec!r}")  # pragma: no cover - the Record union is closed


def _pairs(reply: Any) -> list[tuple[str, bytes]]:
    """HGETALL's flat [field, value, ...] as (field, value) pairs."""
    items = reply or []
    return [(items[i].decode(), items[i + 1]) for i in range(0, len(items), 2)]


def _sessions(node: str, reply: Any) -> list[SessionOpened]:
    """A node's session hash; a field no node could have written is logged and skipped."""
    out = []
    for field, value in _pairs(reply):
        try:
            ev = _codec.decode(value)
        except ValueError as exc:
            log.error("skipped session %s of node %s: %s", field, node, exc)
            continue
        if type(ev) is SessionOpened:
            out.append(ev)
    return out


def _dev_and(member: str) -> tuple[int, str]:
    dev, _, rest = member.partition(":")
    return int(dev), rest


def records_from_keys(replies: Sequence[Any], history: dict[str, Any], queues: dict[str, Any]) -> list[Record]:
    """Rebuild the records of a fresh start from what ``load`` read."""
    auth, udata, revoked, settings, seen = replies
    out: list[Record] = []
    for member, value in _pairs(auth):
        dev, uid = _dev_and(member)
        out.append(R.SetAuth(dev, int(uid), value.decode()))
    for member, value in _pairs(udata):
        dev, uid = _dev_and(member)
        out.append(R.SetUserData(dev, int(uid), value.decode()))
    for member, _ in sorted(_pairs(revoked), key=lambda p: int(p[1])):
        dev, token = _dev_and(member)
        out.append(R.AddRevokedToken(dev, token))
    for member, value in _pairs(settings):
        dev, channel = _dev_and(member)
        out.append(R.SetPipeSettings(dev, channel, int(value)))
    for member, value in _pairs(seen):
        dev, uid = _dev_and(member)
        out.append(R.SetLastSeen(dev, int(uid), int(value)))
    for member, items in history.items():
        dev, channel = _dev_and(member)
        for item in items or ():
            out.append(R.AppendHistory(dev, channel, HistoryEntry(*orjson.loads(item)), 0))
    for member, reply in queues.items():
        dev, uid = _dev_and(member)
        entries = sorted(orjson.loads(v) for _, v in _pairs(reply))
        for _seq, *fields in entries:
            out.append(R.QueueMessage(dev, int(uid), QueuedMessage(*fields)))
    return out


@dataclasses.dataclass(eq=False)
class _Batch:
    values: list[Any] = dataclasses.field(default_factory=list)
    done: trio.Event = dataclasses.field(default_factory=trio.Event)
    error: str | None = None


class RedisStore:
    """The Store for a cluster: ``submit`` makes records durable and ships events, in order."""

    def __init__(self, address: RedisAddress, node_id: str, *, timeout: float = 10.0,
                 heartbeat: float = 2.0, node_ttl: float = 10.0) -> None:
        self.address = address
        self.node_id = node_id
        self.description = f"{address} (node {node_id})"
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.node_ttl_ms = int(node_ttl * 1000)
        self._batch = _Batch()
        self._wake = trio.Event()
        self._beat = False
        self._own: dict[int, SessionOpened] = {}  # this node's sessions, to rewrite after an outage
        self._conn: RedisConnection | None = None
        #: Redis outages seen by the writer, and whether it is connected now (for logs and metrics).
        self.outages = 0
        self.connected = False
        self._writer_scope: trio.CancelScope | None = None
        self._in_flight: _Batch | None = None

    # ------------------------------------------------------------- Store API

    async def connect(self, name: str) -> RedisConnection:
        return await RedisConnection.open(self.address, name=f"cometql-{self.node_id}-{name}")

    async def load(self) -> list[Record]:
        conn = await self.connect("load")
        try:
            replies = await conn.pipeline([["HGETALL", k] for k in ("cq:auth", "cq:udata", "cq:revoked",
                                                                   "cq:settings", "cq:seen")]
                                          + [["SMEMBERS", "cq:hkeys"], ["SMEMBERS", "cq:qkeys"]])
            hkeys = [m.decode() for m in replies[5]]
            qkeys = [m.decode() for m in replies[6]]
            more = await conn.pipeline([["LRANGE", f"cq:h:{m}", 0, -1] for m in hkeys]
                                       + [["HGETALL", f"cq:q:{m}"] for m in qkeys])
        finally:
            await conn.aclose()
        return records_from_keys(replies[:5], dict(zip(hkeys, more[:len(hkeys)], strict=True)),
                                 dict(zip(qkeys, more[len(hkeys):], strict=True)))

    async def write(self, records: Sequence[Record]) -> None:
        await self.submit(records)

    def post(self, values: Sequence[Any]) -> bool:
        """Cluster events with nothing durable among them: into the next batch, in order, without
        waiting (a publish or a browser's subscribe need not wait for Redis; a later ``submit`` is
        ordered after). False while Redis is so far behind that the caller should ``submit`` and wait."""
        if len(self._batch.values) >= MAX_UNSENT:
            return False
        if values:
            self._batch.values.extend(values)
            self._wake.set()
        return True

    async def submit(self, values: Sequence[Any]) -> None:
        """Records and cluster events, in order: returns once Redis has them all."""
        if not values:
            return
        batch = self._batch
        batch.values.extend(values)
        self._wake.set()
        with trio.move_on_after(self.timeout) as scope:
            await batch.done.wait()
        if scope.cancelled_caught:
            raise StoreError(f"Redis ({self.address}) did not take the write within {self.timeout:g} s")
        if batch.error is not None:
            raise StoreError(f"Redis refused a write: {batch.error}")

    async def read_nodes(self, conn: RedisConnection) -> dict[str, list[SessionOpened]]:
        """Every other live node and its sessions (nodes heard from within the node TTL)."""
        since = int(time.time() * 1000) - self.node_ttl_ms
        ids = [n.decode() for n in await conn.call("ZRANGEBYSCORE", NODES, since, "+inf")]
        ids = [n for n in ids if n != self.node_id]
        replies = await conn.pipeline([["HGETALL", node_key(n)] for n in ids])
        return {n: _sessions(n, r) for n, r in zip(ids, replies, strict=True)}

    async def read_node(self, conn: RedisConnection, node: str) -> list[SessionOpened]:
        return _sessions(node, await conn.call("HGETALL", node_key(node)))

    @staticmethod
    async def last_bus_id(conn: RedisConnection) -> str:
        """Where a follower starts: after the newest entry now (earlier ones are in the keys)."""
        newest = await conn.call("XREVRANGE", BUS, "+", "-", "COUNT", 1)
        return newest[0][0].decode() if newest else "0-0"

    # ---------------------------------------------------------------- writer

    async def run_writer(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commit pending batches for the server's lifetime, reconnecting as needed."""
        await self._reconnect(first=True)
        task_status.started()
        # shielded: on shutdown the sessions being closed still write (last-seen times, their leaving);
        # ``stop`` ends the writer once they are done
        with trio.CancelScope(shield=True) as self._writer_scope:
            await self._write_loop()

    async def _write_loop(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._heartbeats)
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                batch, self._batch = self._batch, _Batch()
                self._in_flight = batch
                commands = self._batch_commands(batch.values, beat=self._beat)
                self._beat = False
                replies = await self._send(commands)
                batch.error = _batch_error(replies[-1])
                if batch.error is not None:
                    log.error("Redis refused a batch: %s", batch.error)
                batch.done.set()

    async def _heartbeats(self) -> None:
        while True:
            await trio.sleep(self.heartbeat)
            self._beat = True
            self._wake.set()

    async def _send(self, commands: list[Command]) -> list[Any]:
        while True:
            if self._conn is None:
                await self._reconnect(first=False)
            assert self._conn is not None
            try:
                return await self._conn.pipeline(commands)
            except RedisDown as exc:
                self._lost(exc)

    def _lost(self, exc: Exception) -> None:
        if self.connected:
            self.outages += 1
            log.warning("Redis connection lost (%s); writes wait until it is back", exc)
        self.connected = False
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()

    async def _reconnect(self, *, first: bool) -> None:
        """Connect (with backoff) and re-announce this node: its hash may have expired or Redis restarted."""
        delay = 0.1
        down_since = time.monotonic()
        while True:
            try:
                conn = await self.connect("writer")
                try:
                    refused = [r for r in await conn.pipeline(self._announce()) if isinstance(r, ReplyError)]
                    if refused:  # LOADING, READONLY, OOM...: not usable yet
                        raise RedisDown(f"Redis refused to register this node: {refused[0]}")
                except BaseException:
                    conn.abort()
                    raise
                break
            except RedisDown as exc:
                if first:
                    raise StoreError(f"cannot use Redis at {self.address}: {exc}") from exc
                self.connected = False
                await trio.sleep(delay)
                delay = min(delay * 2, 2.0)
        if not first:
            log.warning("Redis connection back after %.1f s", time.monotonic() - down_since)
        self._conn = conn
        self.connected = True

    def _announce(self) -> list[Command]:
        key = node_key(self.node_id)
        cmds: list[Command] = [["DEL", key]]
        if self._own:
            fields: list[Arg] = []
            for cid, ev in self._own.items():
                fields += [cid, _codec.encode(ev)]
            cmds.append(["HSET", key, *fields])
        cmds.append(["PEXPIRE", key, self.node_ttl_ms])
        cmds.append(["ZADD", NODES, int(time.time() * 1000), self.node_id])
        return cmds

    def _batch_commands(self, values: list[Any], *, beat: bool) -> list[Command]:
        cmds: list[Command] = [["MULTI"]]
        touched = False
        for v in values:
            t = type(v)
            if t is SessionOpened:
                self._own[v.conn_id] = v
                cmds.append(["HSET", node_key(self.node_id), v.conn_id, _codec.encode(v)])
                touched = True
            elif t is SessionSubscribed:
                opened = self._own.get(v.conn_id)
                if opened is not None:
                    opened = self._own[v.conn_id] = dataclasses.replace(opened, channels=v.channels)
                    cmds.append(["HSET", node_key(self.node_id), v.conn_id, _codec.encode(opened)])
            elif t is SessionClosed:
                if self._own.pop(v.conn_id, None) is not None:
                    cmds.append(["HDEL", node_key(self.node_id), v.conn_id])
            elif t in _RECORD_TYPES:
                cmds.extend(_record_commands(v))
        if touched or beat:
            cmds.append(["PEXPIRE", node_key(self.node_id), self.node_ttl_ms])
        if beat:
            now_ms = int(time.time() * 1000)
            cmds.append(["ZADD", NODES, now_ms, self.node_id])
            cmds.append(["ZREMRANGEBYSCORE", NODES, "-inf", now_ms - NODES_FORGET_MS])  # long-gone nodes
        cmds.append(["XADD", BUS, "MAXLEN", "~", STREAM_MAXLEN, "*", "n", self.node_id,
                     "d", _codec.encode_many(values)])
        cmds.append(["EXEC"])
        return cmds

    async def stop(self, grace: float = 5.0) -> None:
        """Let the writer send what is pending (for at most ``grace`` s: Redis may be gone), then end it."""
        with trio.move_on_after(grace):
            if self._in_flight is not None:
                await self._in_flight.done.wait()
            if self._batch.values:
                batch = self._batch
                self._wake.set()
                await batch.done.wait()
        if self._writer_scope is not None:
            self._writer_scope.cancel()

    async def say_goodbye(self) -> None:
        """On a clean stop: remove this node at once, so others need not wait for its expiry."""
        with trio.move_on_after(2):
            try:  # a fresh connection: the writer's may have been cut in the middle of a batch
                conn = await self.connect("goodbye")
                try:
                    await conn.pipeline([["DEL", node_key(self.node_id)], ["ZREM", NODES, self.node_id],
                                         ["XADD", BUS, "MAXLEN", "~", STREAM_MAXLEN, "*", "n", self.node_id,
                                          "bye", "1"]])
                finally:
                    await conn.aclose()
            except RedisDown:
                pass

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.aclose()
            self._conn = None


_RECORD_TYPES = frozenset(
    (R.SetAuth, R.DeleteAuth, R.SetUserData, R.DeleteUserData, R.AddRevokedToken, R.DeleteRevokedToken,
     R.SetPipeSettings, R.DeletePipeSettings, R.AppendHistory, R.ClearHistory, R.DeleteHistoryIds,
     R.QueueMessage, R.DeleteQueued, R.SetLastSeen)
)


def _batch_error(exec_reply: Any) -> str | None:
    """EXEC answers an error (the batch was refused), None (aborted) or each command's reply."""
    if isinstance(exec_reply, ReplyError):
        return str(exec_reply)
    if exec_reply is None:
        return "the transaction was aborted"
    for reply in exec_reply:
        if isinstance(reply, ReplyError):
            return str(reply)
    return None


def is_record(value: object) -> bool:
    return type(value) in _RECORD_TYPES


@asynccontextmanager
async def open_redis_store(url: str, node_id: str, **options: Any) -> AsyncIterator[RedisStore]:
    """A RedisStore whose writer runs in its own nursery until the block ends."""
    store = RedisStore(RedisAddress.parse(url), node_id, **options)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run_writer)
            try:
                yield store
            finally:
                with trio.CancelScope(shield=True):
                    await store.stop()
                    await store.say_goodbye()
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()
