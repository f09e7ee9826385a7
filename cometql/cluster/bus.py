"""The bus writer: the store of a clustered node, and its side of the Redis bus.

Why a stream, not pub/sub: a node that loses its connection resumes reading
after the last entry it saw, so a Redis hiccup delays messages instead of
dropping them; with pub/sub, whatever was published meanwhile is gone for
that node. The cost is one XADD (~same as PUBLISH) and a capped stream.

Every write is group-committed: whatever records and events are pending go
out as one ``MULTI`` (the materialised keys of ``store.redis`` *and* one XADD
of the batch), so the keys and the stream never disagree, and an INSERT that
queues a message is acknowledged only once Redis has taken it.

Each ``commit`` call is one statement's, and EXEC answers each command: a
command Redis refuses fails only the call it belongs to. Redis has no
rollback, so that call's other commands and the batch's bus entry stand (other
nodes may apply what this node refused; only a key of the wrong type, written
by something else, does that). What refuses the whole transaction (OOM,
MISCONF, READONLY: EXECABORT) or the bus entry fails every call of the batch,
and none of them is stored. A call that times out before the writer took its
batch is withdrawn (not stored); one already sent may still be stored once
Redis answers, and the error says so. ``settle`` runs in batch order.

The store decides wait-or-queue (``commit``): changes with a record wait until
Redis has the batch; events alone (a publish, a browser's subscribe) join the
next batch in order without waiting, unless Redis is so far behind
(``MAX_UNSENT``) that writers should wait. The writer also keeps this node's
session hash and heartbeat (``_keys``), and re-announces the node after an
outage (its hash may have expired, or Redis restarted empty).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from ..errors import StoreError
from ..hub import (
    Change,
    ConnInfo,
    Kick,
    Position,
    Published,
    QueuedMessage,
    Record,
    SessionClosed,
    SessionOpened,
    SessionSubscribed,
    UserMessage,
    is_record,
)
from ..hub.records import AppendHistory
from ..redisurl import RedisAddress
from ..store import QueueSize, Settle, codec, no_settle
from ..store import redis as keys
from ..store.resp import Arg, Command, RedisConnection, RedisDown, Reply, ReplyError
from . import _compat
from ._keys import BUS, NODES, NODES_FORGET_MS, STREAM_MAXLEN, node_key, old_nodes_live, read_sessions

__all__ = ["MAX_UNSENT", "Bus", "open_bus"]

log = logging.getLogger("cometql.redis")

#: Values waiting for Redis beyond which writers wait (``submit``) instead of queueing (``post``):
#: during an outage, publishes are held up to this many, then refused after the write timeout.
MAX_UNSENT = 100_000


@dataclasses.dataclass(eq=False, slots=True)
class _Write:
    """One ``commit`` call's changes (one statement's) and how it ended."""

    values: Sequence[Change]
    settle: Settle = no_settle
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Span:
    """Where one write's commands are answered in EXEC's reply, and which of them are appends."""

    replies: range
    appends: list[int]


#: The bus entry of a MULTI with appends: XADD with field ``o``, the (id, epoch, offset) each append was
#: assigned (``store.redis.ASSIGNED``), so that every node gets a message's offset with the message.
_XADD_ASSIGNED = """
local assigned = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
local args = {KEYS[1]}
for i = 1, #ARGV do args[#args + 1] = ARGV[i] end
args[#args + 1] = 'o'
args[#args + 1] = cjson.encode(assigned)
return redis.call('XADD', unpack(args))
"""


@dataclasses.dataclass(eq=False)
class _Batch:
    writes: list[_Write] = dataclasses.field(default_factory=list)
    size: int = 0  # values in ``writes``
    done: trio.Event = dataclasses.field(default_factory=trio.Event)
    entry_id: str | None = None  # the bus entry it became, once Redis has it (None: refused)


class Bus:
    """The Store for a cluster: ``commit`` makes records durable and ships events, in order."""

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
        #: A gap this long between refreshes of this node's hash means this process was paused (SIGSTOP,
        #: a suspended VM...) or starved: others have dropped it and its hash may have expired.
        self._stale_after = min(3 * heartbeat, node_ttl / 2)
        self._refreshed = time.monotonic()  # when the last batch refreshing the hash was built
        self.pauses = 0
        self._own: dict[int, SessionOpened] = {}  # this node's sessions, to rewrite after an outage
        self._conn: RedisConnection | None = None
        #: Redis outages seen by the writer, and whether it is connected now (for logs and metrics).
        self.outages = 0
        self.connected = False
        self._writer_scope: trio.CancelScope | None = None
        self._in_flight: _Batch | None = None
        self._reader: RedisConnection | None = None  # queue pages
        self._reading = trio.Lock()
        #: Live nodes of the previous version (a rolling upgrade): the follower keeps it, entries follow it.
        self.compat = _compat.Compat()

    # ------------------------------------------------------------- Store API

    async def connect(self, name: str) -> RedisConnection:
        return await RedisConnection.open(self.address, name=f"cometql-{self.node_id}-{name}")

    async def load(self) -> list[Record]:
        conn = await self.connect("load")
        try:
            return await keys.load(conn)
        finally:
            await conn.aclose()

    async def queue_sizes(self) -> list[QueueSize]:
        conn = await self.connect("load")
        try:
            return await keys.queue_sizes(conn, check_all=await old_nodes_live(conn, self.node_id, self.node_ttl_ms))
        finally:
            await conn.aclose()

    async def queue_page(self, dev_id: int, user_id: int, after: int, limit: int, *,
                         claim: bool = True) -> list[tuple[int, QueuedMessage]]:
        """A page of a user's queue, on this node's reading connection (opened again after an outage),
        under the user's lease: ``QueueClaimed`` while another node hands out the same backlog."""
        async with self._reading:
            reader = await self._read_connection()
            try:
                with trio.fail_after(self.timeout):
                    return await keys.queue_page(reader, dev_id, user_id, after, limit, self.node_id if claim else "")
            except (RedisDown, ReplyError, OSError, trio.TooSlowError) as exc:
                await self._reader_lost()
                raise StoreError(f"Redis: cannot read a queue: {exc}") from exc

    async def sessions(self, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], ConnInfo]:
        """Who other nodes' sessions are, from their session hashes (``read_sessions``), on the reading
        connection: (node, conn id) -> ``ConnInfo``; a session gone meanwhile is absent."""
        async with self._reading:
            reader = await self._read_connection()
            try:
                with trio.fail_after(self.timeout):
                    return await read_sessions(reader, wanted)
            except (RedisDown, ReplyError, OSError, trio.TooSlowError) as exc:
                await self._reader_lost()
                raise StoreError(f"Redis: cannot read the other nodes' sessions: {exc}") from exc

    async def _read_connection(self) -> RedisConnection:
        """The reading connection (queue pages, session hashes), opened again after an outage."""
        if self._reader is None:
            try:
                with trio.fail_after(self.timeout):
                    self._reader = await self.connect("read")
            except (RedisDown, OSError, trio.TooSlowError) as exc:
                raise StoreError(f"Redis: cannot connect to read: {exc}") from exc
        return self._reader

    async def _reader_lost(self) -> None:
        if self._reader is not None:
            with trio.CancelScope(shield=True):
                await self._reader.aclose()
            self._reader = None

    async def commit(self, changes: Sequence[Change], settle: Settle = no_settle, *, lazy: bool = False) -> None:
        """Records (and the events around them): wait until Redis has them. Events alone: queue them."""
        if any(is_record(c) for c in changes) or not self.post(changes):
            await self.submit(changes, settle)

    def post(self, values: Sequence[Change]) -> bool:
        """Cluster events with nothing durable among them: into the next batch, in order, without
        waiting (a publish or a browser's subscribe need not wait for Redis; a later ``submit`` is
        ordered after). False while Redis is so far behind that the caller should ``submit`` and wait."""
        batch = self._batch
        if batch.size >= MAX_UNSENT:
            return False
        if values:
            batch.writes.append(_Write(values))
            batch.size += len(values)
            self._wake.set()
        return True

    async def submit(self, values: Sequence[Change], settle: Settle = no_settle) -> None:
        """Records and cluster events, in order: returns once Redis has them all (or raises, and then
        ``settle`` was told they are not stored)."""
        if not values:
            return
        batch = self._batch
        write = _Write(values, settle)
        batch.writes.append(write)
        batch.size += len(values)
        self._wake.set()
        with trio.move_on_after(self.timeout) as scope:
            await batch.done.wait()
        if scope.cancelled_caught:
            waited = f"Redis ({self.address}) did not take the write within {self.timeout:g} s"
            if batch is not self._batch:  # sent: Redis may still apply it
                raise StoreError(f"{waited}; it may still be stored once Redis answers")
            batch.writes.remove(write)  # not sent yet: withdrawn, so it is never stored
            batch.size -= len(values)
            settle(False)
            raise StoreError(f"{waited}; it was not stored")
        if write.error is not None:
            raise StoreError(f"Redis refused a write: {write.error}")

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
                now = time.monotonic()
                resync = now - self._refreshed > self._stale_after
                if resync:
                    self.pauses += 1
                    log.warning("this node was paused or starved for %.1f s: re-announcing its sessions",
                                now - self._refreshed)
                commands, spans = self._batch_commands(batch.writes, beat=self._beat or resync, resync=resync)
                self._beat = False
                replies = await self._send(commands)
                batch.entry_id = _settle(batch.writes, spans, replies[-1])
                batch.done.set()

    async def probe(self) -> str | None:
        """Write a heartbeat entry now and wait until Redis has it; returns its bus entry id (the canary
        then waits for the follower to read it back). Raises ``StoreError`` if Redis does not take it."""
        batch = self._batch
        self._beat = True
        self._wake.set()
        with trio.move_on_after(self.timeout):
            await batch.done.wait()
        if batch.entry_id is None:
            raise StoreError(f"Redis ({self.address}) did not take a bus entry within {self.timeout:g} s")
        return batch.entry_id

    async def _heartbeats(self) -> None:
        while True:
            await trio.sleep(self.heartbeat)
            self._beat = True
            self._wake.set()

    async def _send(self, commands: list[Command]) -> list[Reply]:
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
        self._refreshed = time.monotonic()

    def _announce(self) -> list[Command]:
        key = node_key(self.node_id)
        cmds: list[Command] = [["DEL", key]]
        if self._own:
            fields: list[Arg] = []
            for cid, ev in self._own.items():
                fields += [cid, codec.encode(ev)]
            cmds.append(["HSET", key, *fields])
        cmds.append(["PEXPIRE", key, self.node_ttl_ms])
        cmds.append(["SET", _compat.version_key(self.node_id), _compat.VERSION, "PX", self.node_ttl_ms])
        cmds.append(["ZADD", NODES, int(time.time() * 1000), self.node_id])
        return cmds

    def _batch_commands(self, writes: list[_Write], *, beat: bool,
                        resync: bool = False) -> tuple[list[Command], list[_Span]]:
        """The batch's MULTI ... EXEC, and for each write where its commands' replies are in EXEC's.

        ``resync``: also rewrite this node's whole hash (after the batch's own changes) and mark the bus
        entry so that every follower re-reads it (``sync_node``): after a pause, others have dropped this
        node and its hash may have expired, so what they re-learn from it must be complete."""
        cmds: list[Command] = [["MULTI"]]
        spans: list[_Span] = []
        touched = False
        for w in writes:
            start = len(cmds) - 1  # EXEC answers the commands after MULTI
            appends: list[int] = []
            for v in w.values:
                match v:
                    case Published() | UserMessage() | Kick():
                        pass  # only on the bus
                    case SessionOpened():
                        self._own[v.conn_id] = v
                        cmds.append(["HSET", node_key(self.node_id), v.conn_id, codec.encode(v)])
                        touched = True
                    case SessionSubscribed():
                        opened = self._own.get(v.conn_id)
                        if opened is not None:
                            opened = self._own[v.conn_id] = dataclasses.replace(opened, channels=v.channels)
                            cmds.append(["HSET", node_key(self.node_id), v.conn_id, codec.encode(opened)])
                    case SessionClosed():
                        if self._own.pop(v.conn_id, None) is not None:
                            cmds.append(["HDEL", node_key(self.node_id), v.conn_id])
                    case AppendHistory():  # Redis assigns its offset: the reply carries it
                        appends.append(len(cmds) - 1)
                        cmds.extend(keys.record_commands(v))
                    case _:  # a record: its keys
                        cmds.extend(keys.record_commands(v))
            spans.append(_Span(range(start, len(cmds) - 1), appends))
        if resync:
            cmds.extend(self._announce()[:-1])  # the hash, as this node holds it now; ZADD below
        if touched or beat:
            cmds.append(["PEXPIRE", node_key(self.node_id), self.node_ttl_ms])
            cmds.append(["PEXPIRE", _compat.version_key(self.node_id), self.node_ttl_ms])
            self._refreshed = time.monotonic()
        if beat:
            now_ms = int(time.time() * 1000)
            cmds.append(["ZADD", NODES, now_ms, self.node_id])
            cmds.append(["ZREMRANGEBYSCORE", NODES, "-inf", now_ms - NODES_FORGET_MS])  # long-gone nodes
        marks: list[Arg] = ["sync", 1] if resync else []
        xadd: list[Arg] = [BUS, "MAXLEN", "~", STREAM_MAXLEN, "*", "n", self.node_id, *marks,
                           *_compat.encode([v for w in writes for v in w.values], self.compat.active)]
        if any(span.appends for span in spans):  # the entry carries the offsets assigned in this MULTI
            cmds.append(["EVAL", _XADD_ASSIGNED, 2, BUS, keys.ASSIGNED, *xadd[1:]])
        else:
            cmds.append(["XADD", *xadd])
        cmds.append(["EXEC"])
        return cmds, spans

    async def stop(self, grace: float = 5.0) -> None:
        """Let the writer send what is pending (for at most ``grace`` s: Redis may be gone), then end it."""
        with trio.move_on_after(grace):
            if self._in_flight is not None:
                await self._in_flight.done.wait()
            if self._batch.writes:
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
                    await conn.pipeline([["DEL", node_key(self.node_id), _compat.version_key(self.node_id)],
                                         ["ZREM", NODES, self.node_id],
                                         ["XADD", BUS, "MAXLEN", "~", STREAM_MAXLEN, "*", "n", self.node_id,
                                          "bye", "1"]])
                finally:
                    await conn.aclose()
            except RedisDown:
                pass

    async def aclose(self) -> None:
        for conn in (self._conn, self._reader):
            if conn is not None:
                await conn.aclose()
        self._conn = self._reader = None


def _positions(replies: list[Any], span: _Span) -> list[Position]:
    """The (epoch, offset) Redis assigned to a write's appends, from their scripts' replies."""
    return [(replies[i][0].decode(), int(replies[i][1])) for i in span.appends]


def _settle(writes: list[_Write], spans: list[_Span], exec_reply: Reply) -> str | None:
    """Each write's outcome from EXEC's answer, told to its ``settle`` in batch order; returns the id of
    the bus entry the batch became (None if it was refused).

    EXEC answers an error (the batch was refused), None (aborted) or each command's reply; a
    refused bus entry (the last command) fails every write, a refused key only its own write.
    """
    everyone: str | None = None
    replies: list[Any] = []
    if isinstance(exec_reply, ReplyError):
        everyone = str(exec_reply)
    elif exec_reply is None:
        everyone = "the transaction was aborted"
    else:
        replies = exec_reply
        if isinstance(replies[-1], ReplyError):
            everyone = f"the bus entry: {replies[-1]}"
    if everyone is not None:
        log.error("Redis refused a batch: %s", everyone)
    for write, span in zip(writes, spans, strict=True):
        write.error = everyone or next((str(replies[i]) for i in span.replies if isinstance(replies[i], ReplyError)),
                                       None)
        if write.error is not None and everyone is None:
            log.error("Redis refused a write: %s", write.error)
        try:
            if write.error is None and span.appends:
                write.settle(True, _positions(replies, span))
            else:
                write.settle(write.error is None)
        except Exception:  # pragma: no cover - settle is the hub applying records: a bug, logged
            log.exception("applying stored records failed")
    entry = None if everyone is not None else replies[-1]
    return entry.decode() if isinstance(entry, bytes) else None


@asynccontextmanager
async def open_bus(url: str, node_id: str, *, timeout: float = 10.0, heartbeat: float = 2.0,
                   node_ttl: float = 10.0) -> AsyncIterator[Bus]:
    """A Bus whose writer runs in its own nursery until the block ends."""
    bus = Bus(RedisAddress.parse(url), node_id, timeout=timeout, heartbeat=heartbeat, node_ttl=node_ttl)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.run_writer)
            try:
                yield bus
            finally:
                with trio.CancelScope(shield=True):
                    await bus.stop()
                    await bus.say_goodbye()
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await bus.aclose()
