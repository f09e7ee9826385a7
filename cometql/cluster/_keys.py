"""The keys a cluster keeps in Redis besides the durable records, and how nodes read them.

::

    cq:node:<node>                 HASH conn id -> that node's live session (expires)
    cq:nodes                       ZSET node -> last heartbeat (ms)
    cq:bus                         STREAM of batches: records and cluster events, in order
    cq:v:<node>                    STRING that node's version (expires with its hash; ``_compat``)

Written by the bus writer (``bus``), read by the follower (``follower``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from ..hub import ConnInfo, SessionOpened, info_of
from ..store import codec
from ..store.redis import hash_pairs
from ..store.resp import RedisConnection, Reply
from ._compat import version_key

__all__ = ["BUS", "NODES", "NODES_FORGET_MS", "STREAM_MAXLEN", "last_bus_id", "node_key", "read_node",
           "old_nodes_live", "read_nodes", "read_sessions", "read_versions"]

log = logging.getLogger("cometql.redis")

BUS = "cq:bus"
NODES = "cq:nodes"
#: Bus entries Redis keeps (approximately). Each entry is one batch (often many messages); what a node
#: can catch up on after losing its connection. Bounded so that big messages cannot fill Redis' memory.
STREAM_MAXLEN = 20_000

#: Nodes silent this long leave the ``cq:nodes`` index (every restart adds one: a new node id).
NODES_FORGET_MS = 3_600_000


def node_key(node: str) -> str:
    return f"cq:node:{node}"


def _sessions(node: str, reply: Reply) -> list[SessionOpened]:
    """A node's session hash; a field no node could have written is logged and skipped."""
    out = []
    for field, value in hash_pairs(reply):
        try:
            ev = codec.decode(value)
        except ValueError as exc:
            log.error("skipped session %s of node %s: %s", field, node, exc)
            continue
        if isinstance(ev, SessionOpened):
            out.append(ev)
    return out


async def read_nodes(conn: RedisConnection, own: str, ttl_ms: int) -> dict[str, list[SessionOpened]]:
    """Every other live node and its sessions (nodes heard from within ``ttl_ms``)."""
    since = int(time.time() * 1000) - ttl_ms
    ids = [n.decode() for n in await conn.call("ZRANGEBYSCORE", NODES, since, "+inf")]
    ids = [n for n in ids if n != own]
    replies = await conn.pipeline([["HGETALL", node_key(n)] for n in ids])
    return {n: _sessions(n, r) for n, r in zip(ids, replies, strict=True)}


async def read_node(conn: RedisConnection, node: str) -> tuple[list[SessionOpened], Reply]:
    """A node's sessions and its version (None: a node of the previous version, ``_compat``)."""
    sessions, version = await conn.pipeline([["HGETALL", node_key(node)], ["GET", version_key(node)]])
    return _sessions(node, sessions), version


async def old_nodes_live(conn: RedisConnection, own: str, ttl_ms: int) -> bool:
    """Whether a live node (other than ``own``) is of the previous version (``_compat``)."""
    since = int(time.time() * 1000) - ttl_ms
    ids = [n.decode() for n in await conn.call("ZRANGEBYSCORE", NODES, since, "+inf")]
    return any(v is None for v in (await read_versions(conn, [n for n in ids if n != own])).values())


async def read_versions(conn: RedisConnection, nodes: list[str]) -> dict[str, Reply]:
    """Each node's version (None: of the previous version)."""
    replies = await conn.pipeline([["GET", version_key(n)] for n in nodes]) if nodes else []
    return dict(zip(nodes, replies, strict=True))


async def last_bus_id(conn: RedisConnection) -> str:
    """Where a follower starts: after the newest entry now (earlier ones are in the keys)."""
    newest = await conn.call("XREVRANGE", BUS, "+", "-", "COUNT", 1)
    return str(newest[0][0].decode()) if newest else "0-0"


async def read_sessions(conn: RedisConnection, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], ConnInfo]:
    """Who some of the other nodes' sessions are ((node, conn id) -> ``ConnInfo``): one HMGET per node,
    pipelined. Each node keeps only counts and users of the others' sessions (``hub._remote``); a
    ``users_in_pipes`` SELECT reads the rest here. A session gone meanwhile is absent."""
    by_node: dict[str, list[int]] = {}
    for node, conn_id in wanted:
        by_node.setdefault(node, []).append(conn_id)
    nodes = list(by_node)
    replies = await conn.pipeline([["HMGET", node_key(n), *by_node[n]] for n in nodes])
    out: dict[tuple[str, int], ConnInfo] = {}
    for node, reply in zip(nodes, replies, strict=True):
        for conn_id, value in zip(by_node[node], reply, strict=True):
            try:
                ev = codec.decode(value) if value is not None else None
            except ValueError as exc:  # not written by a node: left out, as ``read_node`` does
                log.error("skipped session %s of node %s: %s", conn_id, node, exc)
                continue
            if isinstance(ev, SessionOpened):
                out[(node, conn_id)] = info_of(ev)
    return out
