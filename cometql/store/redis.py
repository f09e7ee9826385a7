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
    cq:qo:<dev>:<user>             ZSET message id by position (the queue's order, for pages)
    cq:qseq, cq:qbytes             HASH "dev:user" -> last position given / bytes queued
    cq:ql:<dev>:<user>             STRING node id: the node handing out the user's backlog (a lease)
    cq:hkeys, cq:qkeys             SET of the history / queue keys (no SCAN at start-up)

Queues are never loaded whole: ``queue_sizes`` reads each queue's count and
bytes, ``queue_page`` one page after a position (a Lua script: one round trip,
atomic). Data written before positions existed (a queue hash without its
``cq:qo`` order) is given positions in its old order on the first start
(``queue_sizes``), so it loads as it is.

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

from ..errors import QueueClaimed
from ..hub import records as r
from ..hub.records import HistoryEntry, QueuedMessage, Record
from .resp import Arg, Command, RedisConnection, Reply

__all__ = ["hash_pairs", "load", "queue_page", "queue_sizes", "record_commands"]

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

#: Append one message: a new position (per user, never reused), the message, its place in the order.
_QUEUE = """
if redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) == 1 then
  local seq = redis.call('HINCRBY', 'cq:qseq', ARGV[1], 1)
  redis.call('ZADD', KEYS[2], seq, ARGV[2])
  redis.call('HINCRBY', 'cq:qbytes', ARGV[1], ARGV[4])
  redis.call('SADD', 'cq:qkeys', ARGV[1])
end
return 1
"""

#: Delete messages by id (each O(1) in the hash, O(log n) in the order); an emptied queue leaves no key.
_UNQUEUE = """
local removed = redis.call('HDEL', KEYS[1], unpack(ARGV, 3))
redis.call('ZREM', KEYS[2], unpack(ARGV, 3))
if removed > 0 then redis.call('HINCRBY', 'cq:qbytes', ARGV[1], -tonumber(ARGV[2])) end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('SREM', 'cq:qkeys', ARGV[1])
  redis.call('HDEL', 'cq:qbytes', ARGV[1])
end
return removed
"""

#: Up to ARGV[2] messages after position ARGV[1]: [position, message, ...]. With a node (ARGV[3]), the
#: user's lease (KEYS[3]) is taken or renewed for ARGV[4] ms first; held by another node: {-1, ms left}.
#: An empty page hands nothing out: the lease is let go at once (a login with nothing queued holds none).
_PAGE = """
if ARGV[3] ~= '' then
  local holder = redis.call('GET', KEYS[3])
  if holder and holder ~= ARGV[3] then return {-1, redis.call('PTTL', KEYS[3])} end
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {}
for i = 1, #ids, 2 do
  local value = redis.call('HGET', KEYS[1], ids[i])
  if value then
    out[#out + 1] = ids[i + 1]
    out[#out + 1] = value
  end
end
if #out == 0 and ARGV[3] ~= '' then redis.call('DEL', KEYS[3]) end
return out
"""

#: Give an old queue (no order yet) positions 1..n in the order computed by the caller; once only.
_MIGRATE = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  for i = 3, #ARGV do redis.call('ZADD', KEYS[2], i - 2, ARGV[i]) end
  redis.call('HSET', 'cq:qseq', ARGV[1], #ARGV - 2)
  redis.call('HSET', 'cq:qbytes', ARGV[1], ARGV[2])
end
return 1
"""


def _queue_keys(member: str) -> list[Arg]:
    return [2, f"cq:q:{member}", f"cq:qo:{member}"]


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
            return [["EVAL", _QUEUE, *_queue_keys(member), member, q.id, value, q.nbytes]]
        case r.DeleteQueued():
            member = f"{rec.dev_id}:{rec.user_id}"
            if rec.ids is None:
                return [["DEL", f"cq:q:{member}", f"cq:qo:{member}"], ["SREM", "cq:qkeys", member],
                        ["HDEL", "cq:qbytes", member]]
            return [["EVAL", _UNQUEUE, *_queue_keys(member), member, rec.nbytes, *rec.ids]] if rec.ids else []
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
    replies = await conn.pipeline([*reads, ["SMEMBERS", "cq:hkeys"]])
    hkeys = [m.decode() for m in replies[7]]
    numbered = {m for m, _ in hash_pairs(replies[5])}
    if migrate and any(m not in numbered for m in hkeys):  # written before channel offsets: number, read again
        await conn.pipeline([["EVAL", _NUMBER_HISTORY, 1, f"cq:h:{m}", m, uuid.uuid4().hex[:16]]
                             for m in hkeys if m not in numbered])
        return await load(conn, migrate=False)
    lists: list[Command] = [["LRANGE", f"cq:h:{m}", 0, -1] for m in hkeys]
    more = await conn.pipeline(lists)
    return _records_from_keys(replies[:7], dict(zip(hkeys, more, strict=True)))


async def queue_sizes(conn: RedisConnection) -> list[tuple[int, int, int, int]]:
    """Each queue's (dev, user, messages, bytes); gives a queue of an earlier version its order first."""
    (members,) = await conn.pipeline([["SMEMBERS", "cq:qkeys"]])
    qkeys = [m.decode() for m in members or ()]
    cmds: list[Command] = []
    for m in qkeys:
        cmds += [["HLEN", f"cq:q:{m}"], ["ZCARD", f"cq:qo:{m}"], ["HGET", "cq:qbytes", m]]
    replies = await conn.pipeline(cmds) if cmds else []
    sizes: list[tuple[int, int, int, int]] = []
    for i, member in enumerate(qkeys):
        count, ordered, nbytes = replies[3 * i: 3 * i + 3]
        if count and ordered != count:
            nbytes = await _migrate(conn, member)
        dev, uid = _dev_and(member)
        if count:
            sizes.append((dev, int(uid), int(count), int(nbytes or 0)))
    return sizes


async def _migrate(conn: RedisConnection, member: str) -> int:
    """An earlier version's queue (a hash, ordered by the time in each value): give it positions."""
    (reply,) = await conn.pipeline([["HGETALL", f"cq:q:{member}"]])
    entries = sorted(orjson.loads(v) for _, v in hash_pairs(reply))
    nbytes = sum(len(e[4].encode()) for e in entries)
    await conn.pipeline([["EVAL", _MIGRATE, *_queue_keys(member), member, nbytes, *(e[1] for e in entries)]])
    return nbytes


#: How long a node holds a user's lease after reading a page of the user's queue.
LEASE_MS = 2000


async def queue_page(conn: RedisConnection, dev_id: int, user_id: int, after: int, limit: int,
                     node: str = "") -> list[tuple[int, QueuedMessage]]:
    """Up to ``limit`` messages of a user's queue after position ``after``, oldest first.

    With ``node``: only while no other node holds the user's lease (taken or renewed here), so two
    nodes never hand out the same backlog at once; raises ``QueueClaimed`` otherwise."""
    member = f"{dev_id}:{user_id}"
    keys: list[Arg] = [3, f"cq:q:{member}", f"cq:qo:{member}", f"cq:ql:{member}"]
    (reply,) = await conn.pipeline([["EVAL", _PAGE, *keys, after, limit, node, LEASE_MS]])
    if isinstance(reply, Exception):
        raise reply
    items = reply or []
    if items and items[0] == -1:
        raise QueueClaimed(max(0, int(items[1])) / 1000)
    return [(int(items[i]), QueuedMessage(*orjson.loads(items[i + 1])[1:])) for i in range(0, len(items), 2)]


def _records_from_keys(replies: Sequence[Reply], history: dict[str, Reply]) -> list[Record]:
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
    return out
