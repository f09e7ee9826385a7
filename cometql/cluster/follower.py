"""One node of a cluster: follow the Redis bus, keep the view of other nodes true.

The hub decides everything (``remote_changes``, ``sync_node``, ``drop_node``);
this module only moves bytes and time:

* the follower reads the bus stream from the last entry it saw, so after a
  Redis outage it resumes where it stopped and nothing published meanwhile is
  skipped; then it re-reads every node's session list (it may have missed
  joins and leaves that expired out of the stream);
* the reaper drops a node it has not heard from for ``node_timeout`` seconds
  (every node writes at least a heartbeat every ``node_timeout / 3``), so a
  killed node's users go offline for everyone else in bounded time.

What another node causes here is applied through the engine (``Applier``:
anything with a hub, a clock and ``apply``); this package does not import the
engine, which sits above it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

import orjson
import trio

from ..errors import StoreError
from ..hub import Change, Effect, Hub
from ..hub.records import AppendHistory
from ..store.resp import RedisConnection, RedisDown, ReplyError
from . import _compat
from ._keys import BUS, last_bus_id, read_node, read_nodes, read_versions
from .bus import Bus

__all__ = ["Applier", "Cluster"]

log = logging.getLogger("cometql.cluster")


def _assigned(values: list[Change], assigned: bytes) -> list[Change]:
    """A bus entry's values with the (epoch, offset) Redis assigned to each append (field ``o``); an
    append Redis refused (none assigned) is dropped: it is not stored."""
    flat = orjson.loads(assigned)
    if not isinstance(flat, list):  # Lua's empty table: every append was refused
        flat = []
    given = {flat[i]: (flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat) - 2, 3)}
    out: list[Change] = []
    for v in values:
        if type(v) is AppendHistory:
            place = given.get(v.entry.id)
            if place is None:
                continue
            v = replace(v, epoch=place[0], entry=replace(v.entry, offset=place[1]))
        out.append(v)
    return out


class Applier(Protocol):
    """What the follower needs of the engine."""

    hub: Hub

    def now(self) -> int: ...

    async def apply(self, effects: Iterable[Effect]) -> None: ...


class Cluster:
    def __init__(self, store: Bus, *, node_timeout: float = 6.0) -> None:
        #: The bus writer: this node's store, and where the follower opens its connections.
        self.store = store
        self.node_id = store.node_id
        self.node_timeout = node_timeout
        self.engine: Applier | None = None
        #: Other nodes and when this node last heard from them (monotonic seconds).
        self.heard: dict[str, float] = {}
        self.last_id = "0-0"
        self.connected = False
        #: The last entry of this node's own read back from the bus (the canary: the bus goes round).
        self.own_last_id = "0-0"
        self.outages = 0
        self.entries = 0
        self._conn: RedisConnection | None = None
        self._applying = False
        self._resync_wanted = False
        self.pauses = 0

    async def begin(self) -> None:
        """Before the durable state is loaded: remember where the bus is, so that every
        change made while loading is replayed afterwards (replays are idempotent)."""
        self._conn = await self.store.connect("follower")
        self.last_id = await last_bus_id(self._conn)
        self.connected = True

    async def join(self, engine: Applier) -> None:
        """Learn the other nodes' sessions before this node serves anyone."""
        self.engine = engine
        assert self._conn is not None
        await self._resync(self._conn)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._reap)
            task_status.started()
            await self._follow()

    # -------------------------------------------------------------- follower

    async def _follow(self) -> None:
        delay = 0.1
        try:
            while True:
                try:
                    await self._read_once()
                    delay = 0.1
                except (RedisDown, ReplyError) as exc:  # ReplyError: e.g. cq:bus made a non-stream by hand
                    if self.connected:
                        self.outages += 1
                        log.warning("cluster bus unreachable (%s); retrying", exc)
                    self.connected = False
                    if self._conn is not None:
                        self._conn.abort()
                        self._conn = None
                    await trio.sleep(delay)
                    delay = min(delay * 2, 2.0)
        finally:
            if self._conn is not None:
                self._conn.abort()
                self._conn = None

    async def _read_once(self) -> None:
        """(Re)connect and resync if needed, then read and apply one XREAD's worth of entries."""
        if self._conn is None:
            self._conn = await self.store.connect("follower")
            await self._resync(self._conn)
            log.warning("cluster bus reachable again; resumed after entry %s", self.last_id)
            self.connected = True
        elif self._resync_wanted:  # after a pause: as after an outage (entries replayed after it are idempotent)
            self._resync_wanted = False
            await self._resync(self._conn)
        reply = await self._conn.call("XREAD", "COUNT", 1000, "BLOCK", 1000, "STREAMS", BUS, self.last_id)
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                try:
                    await self._entry(self._conn, entry_id.decode(), fields)
                except (KeyError, ValueError, TypeError, AttributeError) as exc:  # not written by a node
                    log.error("skipped malformed bus entry %r: %r", entry_id, exc)

    async def _entry(self, conn: RedisConnection, entry_id: str, fields: list[bytes]) -> None:
        self.last_id = entry_id
        self.entries += 1
        data = dict(zip(fields[::2], fields[1::2], strict=True))
        node = data[b"n"].decode()
        if node == self.node_id:
            self.own_last_id = entry_id
            if b"o" in data:  # this node's messages kept in history: fanned out now, in stream order
                await self._apply(self._hub.own_stored(_assigned(_compat.decode(data), data[b"o"])))
            return
        now = self._now()
        compat = self.store.compat
        if b"bye" in data:
            self.heard.pop(node, None)
            compat.gone(node)
            log.info("node %s left the cluster", node)
            await self._apply(self._hub.drop_node(node, now))
            return
        if node not in self.heard or b"sync" in data:  # new, or rewrote its hash after a pause
            log.info("node %s %s the cluster", node, "joined" if node not in self.heard else "re-synced with")
            self.heard[node] = time.monotonic()
            sessions, version = await read_node(conn, node)
            compat.seen(node, version)
            await self._apply(self._hub.sync_node(node, sessions, now))
        self.heard[node] = time.monotonic()
        try:
            values = _compat.decode(data)
            if b"o" in data:
                values = _assigned(values, data[b"o"])
        except ValueError as exc:
            log.error("skipped bus entry %s from node %s: %s", entry_id, node, exc)
            return
        if node in compat.old and values:  # its keys in the previous version's layout: put them right first
            try:
                values = await _compat.upgrade_old(conn, values)
            except ReplyError as exc:  # applied as they are: a page or the next start puts the queues right
                log.error("could not upgrade the keys of entry %s from node %s: %s", entry_id, node, exc)
        await self._apply(self._hub.remote_changes(node, values, now))  # in stream order

    async def _resync(self, conn: RedisConnection) -> None:
        """Make the view of every node equal to what Redis holds now."""
        nodes = await read_nodes(conn, self.node_id, self.store.node_ttl_ms)
        versions = await read_versions(conn, list(nodes))
        compat = self.store.compat
        for node in set(compat.old) - set(nodes):
            compat.gone(node)
        for node, version in versions.items():
            compat.seen(node, version)
        now = self._now()
        effects: list[Effect] = []
        for node in set(self._hub.remote_nodes()) - set(nodes):
            effects.extend(self._hub.drop_node(node, now))
        for node, sessions in nodes.items():
            self.heard[node] = time.monotonic()
            effects.extend(self._hub.sync_node(node, sessions, now))
        for node in set(self.heard) - set(nodes):
            del self.heard[node]
        await self._apply(effects)

    # ----------------------------------------------------------------- reaper

    async def _reap(self) -> None:
        tick = min(1.0, self.node_timeout / 3)
        last = time.monotonic()
        while True:
            await trio.sleep(tick)
            now = time.monotonic()
            gap, last = now - last, now
            if gap > self.node_timeout / 2:  # this process was stopped or starved: it heard nobody, missed no one
                log.warning("this node was paused or starved for %.1f s: re-reading the other nodes", gap)
                self.pauses += 1
                self._resync_wanted = True
                for node in self.heard:
                    self.heard[node] = now
                continue
            if not self.connected:
                continue  # we cannot hear anyone: the resync after the outage decides
            if self._applying:
                continue  # the follower is waiting for Redis: it cannot have heard anyone meanwhile
            limit = time.monotonic() - self.node_timeout
            for node in [n for n, t in self.heard.items() if t < limit]:
                if self.heard.get(node, limit) >= limit:  # heard again, or gone, during an earlier await
                    continue
                del self.heard[node]
                self.store.compat.gone(node)
                log.warning("node %s silent for %.0f s: its sessions are gone", node, self.node_timeout)
                await self._apply(self._hub.drop_node(node, self._now()))

    # ------------------------------------------------------------------ glue

    @property
    def _hub(self) -> Hub:
        assert self.engine is not None
        return self.engine.hub

    def _now(self) -> int:
        assert self.engine is not None
        return self.engine.now()

    async def _apply(self, effects: list[Effect]) -> None:
        """Apply what another node caused here; a store failure is logged, never fatal to the follower."""
        if not effects:
            return
        assert self.engine is not None
        self._applying = True
        try:
            await self.engine.apply(effects)
        except StoreError as exc:
            log.error("could not store what another node caused here: %s", exc)
        finally:
            self._applying = False
