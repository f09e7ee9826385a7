"""Records <-> Redis keys: what the cluster's bus writer runs to make records durable, and ``load``.

Layout of the durable state (all keys start with ``cq:``)::

    cq:auth, cq:udata, cq:seen     HASH "dev:user" -> hash / data / last-seen time
    cq:revoked                     HASH "dev:token" -> insertion time (ns)
    cq:settings                    HASH "dev:channel" -> history length
    cq:h:<dev>:<channel>           LIST of history entries, capped (LTRIM)
    cq:q:<dev>:<user>              HASH message id -> queued message
    cq:hkeys, cq:qkeys             SET of the history / queue keys (no SCAN at start-up)

Nothing here sends a write: ``record_commands`` only translates a record into
commands, and the bus writer (``cometql.cluster.bus``) puts them in its
group-committed ``MULTI`` next to the bus entry that carries the same records
to the other nodes (the keys the cluster itself uses are described there).
``load`` reads the keys back as records, in the order that rebuilds the hub.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import assert_never

import orjson

from ..hub import records as r
from ..hub.records import HistoryEntry, QueuedMessage, Record
from .resp import Command, RedisConnection, Reply

__all__ = ["hash_pairs", "load", "record_commands"]

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


def record_commands(rec: Record) -> list[Command]:
    """The Redis commands that make one record durable (inside the writer's MULTI)."""
    match rec:
        case r.SetAuth():
            return [["HSET", "cq:auth", f"{rec.dev_id}:{rec.user_id}", rec.hash]]
        case r.DeleteAuth():
            return [["HDEL", "cq:auth", f"{rec.dev_id}:{rec.user_id}"]]
        case r.SetUserData():
            return [["HSET", "cq:udata", f"{rec.dev_id}:{rec.user_id}", rec.data]]
        case r.DeleteUserData():
            return [["HDEL", "cq:udata", f"{rec.dev_id}:{rec.user_id}"]]
        case r.AddRevokedToken():
            return [["HSETNX", "cq:revoked", f"{rec.dev_id}:{rec.token}", time.time_ns()]]
        case r.DeleteRevokedToken():
            return [["HDEL", "cq:revoked", f"{rec.dev_id}:{rec.token}"]]
        case r.SetPipeSettings():
            return [["HSET", "cq:settings", f"{rec.dev_id}:{rec.channel}", rec.length]]
        case r.DeletePipeSettings():
            member = f"{rec.dev_id}:{rec.channel}"
            return [["HDEL", "cq:settings", member], ["DEL", f"cq:h:{member}"], ["SREM", "cq:hkeys", member]]
        case r.AppendHistory():
            member = f"{rec.dev_id}:{rec.channel}"
            e = rec.entry
            cmds: list[Command] = [
                ["RPUSH", f"cq:h:{member}", orjson.dumps([e.id, e.time, e.event, e.message, e.user_id])],
                ["SADD", "cq:hkeys", member],
            ]
            if rec.keep:
                cmds.append(["LTRIM", f"cq:h:{member}", -rec.keep, -1])
            return cmds
        case r.ClearHistory():
            member = f"{rec.dev_id}:{rec.channel}"
            return [["DEL", f"cq:h:{member}"], ["SREM", "cq:hkeys", member]]
        case r.DeleteHistoryIds():
            return [["EVAL", _DELETE_HISTORY_IDS, 1, "cq:hkeys", f"{rec.dev_id}:", *rec.ids]] if rec.ids else []
        case r.QueueMessage():
            member = f"{rec.dev_id}:{rec.user_id}"
            q = rec.entry
            value = orjson.dumps([time.time_ns(), q.id, q.time, q.event, q.message])
            return [["HSET", f"cq:q:{member}", q.id, value], ["SADD", "cq:qkeys", member]]
        case r.DeleteQueued():
            member = f"{rec.dev_id}:{rec.user_id}"
            if rec.ids is None:
                return [["DEL", f"cq:q:{member}"], ["SREM", "cq:qkeys", member]]
            return [["HDEL", f"cq:q:{member}", *rec.ids]] if rec.ids else []
        case r.SetLastSeen():
            return [["HSET", "cq:seen", f"{rec.dev_id}:{rec.user_id}", rec.time]]
        case _:
            assert_never(rec)


def hash_pairs(reply: Reply) -> list[tuple[str, bytes]]:
    """HGETALL's flat [field, value, ...] as (field, value) pairs."""
    items = reply or []
    return [(items[i].decode(), items[i + 1]) for i in range(0, len(items), 2)]


def _dev_and(member: str) -> tuple[int, str]:
    dev, _, rest = member.partition(":")
    return int(dev), rest


async def load(conn: RedisConnection) -> list[Record]:
    """Every record the keys hold, in the order that rebuilds a fresh hub."""
    reads: list[Command] = [["HGETALL", k] for k in ("cq:auth", "cq:udata", "cq:revoked", "cq:settings", "cq:seen")]
    replies = await conn.pipeline([*reads, ["SMEMBERS", "cq:hkeys"], ["SMEMBERS", "cq:qkeys"]])
    hkeys = [m.decode() for m in replies[5]]
    qkeys = [m.decode() for m in replies[6]]
    lists: list[Command] = [["LRANGE", f"cq:h:{m}", 0, -1] for m in hkeys]
    more = await conn.pipeline([*lists, *(["HGETALL", f"cq:q:{m}"] for m in qkeys)])
    return _records_from_keys(replies[:5], dict(zip(hkeys, more[:len(hkeys)], strict=True)),
                              dict(zip(qkeys, more[len(hkeys):], strict=True)))


def _records_from_keys(replies: Sequence[Reply], history: dict[str, Reply], queues: dict[str, Reply]) -> list[Record]:
    """Rebuild the records of a fresh start from what ``load`` read."""
    auth, udata, revoked, settings, seen = replies
    out: list[Record] = []
    for member, value in hash_pairs(auth):
        dev, uid = _dev_and(member)
        out.append(r.SetAuth(dev, int(uid), value.decode()))
    for member, value in hash_pairs(udata):
        dev, uid = _dev_and(member)
        out.append(r.SetUserData(dev, int(uid), value.decode()))
    for member, _ in sorted(hash_pairs(revoked), key=lambda p: int(p[1])):
        dev, token = _dev_and(member)
        out.append(r.AddRevokedToken(dev, token))
    for member, value in hash_pairs(settings):
        dev, channel = _dev_and(member)
        out.append(r.SetPipeSettings(dev, channel, int(value)))
    for member, value in hash_pairs(seen):
        dev, uid = _dev_and(member)
        out.append(r.SetLastSeen(dev, int(uid), int(value)))
    for member, items in history.items():
        dev, channel = _dev_and(member)
        for item in items or ():
            out.append(r.AppendHistory(dev, channel, HistoryEntry(*orjson.loads(item)), 0))
    for member, reply in queues.items():
        dev, uid = _dev_and(member)
        entries = sorted(orjson.loads(v) for _, v in hash_pairs(reply))
        for _seq, *fields in entries:
            out.append(r.QueueMessage(dev, int(uid), QueuedMessage(*fields)))
    return out
