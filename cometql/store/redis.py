"""Records <-> Redis keys: what the cluster's bus writer runs to make records durable, and ``load``.

Layout of the durable state (all keys start with ``cq:``)::

    cq:auth, cq:udata, cq:seen     HASH "dev:user" -> hash / data / last-seen time
    cq:revoked                     HASH "dev:token" -> insertion time (ns)
    cq:settings                    HASH "dev:channel" -> history length
    cq:h:<dev>:<channel>           LIST of history entries, capped (LTRIM); each ends with its offset
    cq:epoch, cq:off               HASH "dev:channel" -> the channel's epoch / last offset
    cq:assigned                    LIST (id, epoch, offset) of the appends of the MULTI running; emptied by
                                   the bus entry of the same MULTI, which carries them (``ASSIGNED``)
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
import uuid
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


#: Appends one history entry with the channel's next offset (and epoch: a channel without one starts
#: an epoch named after the entry), assigned here, by the one authority of a cluster, and returns both.
_APPEND_HISTORY = """
local member, id = ARGV[1], ARGV[2]
local epoch = redis.call('HGET', 'cq:epoch', member)
if not epoch then
  epoch = id
  redis.call('HSET', 'cq:epoch', member, epoch)
  redis.call('HSET', 'cq:off', member, 0)
end
local offset = redis.call('HINCRBY', 'cq:off', member, 1)
redis.call('RPUSH', KEYS[1], string.sub(ARGV[3], 1, -2) .. ',' .. offset .. ']')
redis.call('SADD', 'cq:hkeys', member)
local keep = tonumber(ARGV[4])
if keep > 0 then redis.call('LTRIM', KEYS[1], -keep, -1) end
redis.call('RPUSH', KEYS[2], id, epoch, offset)
return {epoch, offset}
"""

#: The list where the appends of one MULTI leave what they assigned, for its bus entry (``cluster.bus``).
ASSIGNED = "cq:assigned"


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
            return [["HDEL", "cq:settings", member], *_clear_history(member)]
        case r.AppendHistory():
            member = f"{rec.dev_id}:{rec.channel}"
            e = rec.entry
            item = orjson.dumps([e.id, e.time, e.event, e.message, e.user_id])  # the script adds the offset
            return [["EVAL", _APPEND_HISTORY, 2, f"cq:h:{member}", ASSIGNED, member, e.id, item, rec.keep]]
        case r.ChannelPosition():
            member = f"{rec.dev_id}:{rec.channel}"
            return [["HSET", "cq:epoch", member, rec.epoch], ["HSET", "cq:off", member, rec.offset]]
        case r.ClearHistory():
            return _clear_history(f"{rec.dev_id}:{rec.channel}")
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


def _clear_history(member: str) -> list[Command]:
    """A channel's history and position go: its next message starts a new epoch."""
    return [["DEL", f"cq:h:{member}"], ["SREM", "cq:hkeys", member], ["HDEL", "cq:epoch", member],
            ["HDEL", "cq:off", member]]


def hash_pairs(reply: Reply) -> list[tuple[str, bytes]]:
    """HGETALL's flat [field, value, ...] as (field, value) pairs."""
    items = reply or []
    return [(items[i].decode(), items[i + 1]) for i in range(0, len(items), 2)]


def _dev_and(member: str) -> tuple[int, str]:
    dev, _, rest = member.partition(":")
    return int(dev), rest


#: Data of the version before channel offsets: number a channel's kept entries 1, 2, ... in order and
#: give it a fresh epoch (ARGV[2]); nothing for a channel that has an epoch (run by every node: once).
_NUMBER_HISTORY = """
local member = ARGV[1]
if redis.call('HEXISTS', 'cq:epoch', member) == 1 then return 0 end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i, item in ipairs(items) do
  redis.call('LSET', KEYS[1], i - 1, string.sub(item, 1, -2) .. ',' .. i .. ']')
end
redis.call('HSET', 'cq:epoch', member, ARGV[2])
redis.call('HSET', 'cq:off', member, #items)
return #items
"""


async def load(conn: RedisConnection, *, migrate: bool = True) -> list[Record]:
    """Every record the keys hold, in the order that rebuilds a fresh hub."""
    names = ("cq:auth", "cq:udata", "cq:revoked", "cq:settings", "cq:seen", "cq:epoch", "cq:off")
    reads: list[Command] = [["HGETALL", k] for k in names]
    replies = await conn.pipeline([*reads, ["SMEMBERS", "cq:hkeys"], ["SMEMBERS", "cq:qkeys"]])
    hkeys = [m.decode() for m in replies[7]]
    qkeys = [m.decode() for m in replies[8]]
    numbered = {m for m, _ in hash_pairs(replies[5])}
    if migrate and any(m not in numbered for m in hkeys):  # written before channel offsets: number, read again
        await conn.pipeline([["EVAL", _NUMBER_HISTORY, 1, f"cq:h:{m}", m, uuid.uuid4().hex[:16]]
                             for m in hkeys if m not in numbered])
        return await load(conn, migrate=False)
    lists: list[Command] = [["LRANGE", f"cq:h:{m}", 0, -1] for m in hkeys]
    more = await conn.pipeline([*lists, *(["HGETALL", f"cq:q:{m}"] for m in qkeys)])
    return _records_from_keys(replies[:7], dict(zip(hkeys, more[:len(hkeys)], strict=True)),
                              dict(zip(qkeys, more[len(hkeys):], strict=True)))


def _records_from_keys(replies: Sequence[Reply], history: dict[str, Reply], queues: dict[str, Reply]) -> list[Record]:
    """Rebuild the records of a fresh start from what ``load`` read."""
    auth, udata, revoked, settings, seen, epochs, offsets = replies
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
    epoch_of = dict(hash_pairs(epochs))
    for member, value in hash_pairs(offsets):
        dev, channel = _dev_and(member)
        if member in epoch_of:
            out.append(r.ChannelPosition(dev, channel, epoch_of[member].decode(), int(value)))
    for member, items in history.items():
        dev, channel = _dev_and(member)
        epoch = epoch_of[member].decode() if member in epoch_of else ""
        for item in items or ():
            out.append(r.AppendHistory(dev, channel, HistoryEntry(*orjson.loads(item)), 0, epoch))
    for member, reply in queues.items():
        dev, uid = _dev_and(member)
        entries = sorted(orjson.loads(v) for _, v in hash_pairs(reply))
        for _seq, *fields in entries:
            out.append(r.QueueMessage(dev, int(uid), QueuedMessage(*fields)))
    return out
