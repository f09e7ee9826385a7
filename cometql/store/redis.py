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
``cq:qo`` order), or by a node of the previous version during a rolling upgrade
(``HSET``/``HDEL`` of the hash only; history entries without an offset), is put
into this layout: by ``queue_sizes`` at start-up, by a page that finds a queue's
order out of step, by every history append and ``load`` (entries without an
offset at a list's end are numbered in order), and by ``old_node_commands``,
which a node runs for each record a node of the previous version wrote
(``cometql.cluster._compat``).

Nothing here sends a write: ``record_commands`` only translates a record into
commands, and the bus writer (``cometql.cluster.bus``) puts them in its
group-committed ``MULTI`` next to the bus entry that carries the same records
to the other nodes (the keys the cluster itself uses are described there).
``load`` reads the keys back as records, in the order that rebuilds the hub.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from typing import assert_never

import orjson

from ..errors import QueueClaimed
from ..hub import records as r
from ..hub.records import HistoryEntry, QueuedMessage, Record
from .resp import Arg, Command, RedisConnection, Reply

__all__ = ["hash_pairs", "load", "old_node_commands", "queue_page", "queue_sizes", "record_commands"]

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


#: Lua: a history list's entries without an offset, at its end, get the channel's next offsets, in list
#: order (a channel without an epoch starts one, named ``new_epoch``). Such entries are written by a node of
#: the previous version (before offsets) during a rolling upgrade, or were kept before it; numbering them
#: wherever a list is appended to or read keeps offsets in list order, which is the bus's order. An entry
#: is numbered when it ends with two integers (user id, offset): an old one ends with its message's string.
_NUMBER_TAIL = """
local function numbered(item) return string.find(string.sub(item, -48), '%d,%d+%]$') ~= nil end
local function number_tail(key, member, new_epoch)
  local epoch = redis.call('HGET', 'cq:epoch', member)
  if not epoch then
    epoch = new_epoch
    redis.call('HSET', 'cq:epoch', member, epoch)
    redis.call('HSET', 'cq:off', member, 0)
  end
  local last = redis.call('LINDEX', key, -1)
  if last and not numbered(last) then
    local items = redis.call('LRANGE', key, 0, -1)
    local i = #items
    while i > 0 and not numbered(items[i]) do i = i - 1 end
    for j = i + 1, #items do
      local offset = redis.call('HINCRBY', 'cq:off', member, 1)
      redis.call('LSET', key, j - 1, string.sub(items[j], 1, -2) .. ',' .. offset .. ']')
    end
  end
  return epoch
end
"""

#: Appends one history entry with the channel's next offset (and epoch: a channel without one starts
#: an epoch named after the entry), assigned here, by the one authority of a cluster, and returns both.
#: Entries of a node of the previous version at the list's end are numbered first (``_NUMBER_TAIL``).
_APPEND_HISTORY = _NUMBER_TAIL + """
local member, id = ARGV[1], ARGV[2]
local epoch = number_tail(KEYS[1], member, id)
local offset = redis.call('HINCRBY', 'cq:off', member, 1)
redis.call('RPUSH', KEYS[1], string.sub(ARGV[3], 1, -2) .. ',' .. offset .. ']')
redis.call('SADD', 'cq:hkeys', member)
local keep = tonumber(ARGV[4])
if keep > 0 then redis.call('LTRIM', KEYS[1], -keep, -1) end
redis.call('RPUSH', KEYS[2], id, epoch, offset)
return {epoch, offset}
"""

#: An append of a node of the previous version (its bus entry has no offsets): number the list's tail,
#: then answer the (epoch, offset) of entry ARGV[2]; nil if it is no longer kept (trimmed meanwhile).
_NUMBER_OLD = _NUMBER_TAIL + """
local epoch = number_tail(KEYS[1], ARGV[1], ARGV[2])
local prefix = '["' .. ARGV[2] .. '",'
local len = redis.call('LLEN', KEYS[1])
for i = 1, len do
  local item = redis.call('LINDEX', KEYS[1], -i)
  if string.sub(item, 1, #prefix) == prefix then return {epoch, tonumber(string.match(item, ',(%d+)%]$'))} end
end
return false
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

#: Lua: make a queue's order (``cq:qo``) match its messages (``cq:q``) and recount its bytes. In step
#: they always are, but for data of earlier versions: a queue written before positions existed (no order),
#: or messages queued (``HSET`` only) or deleted (``HDEL`` only) by a node of the previous version during a
#: rolling upgrade. Positions whose message is gone are dropped; messages without one get the next
#: positions in the order they were queued (each value starts with its queueing time in ns).
_RECONCILE_FN = """
local function reconcile(q, qo, member)
  for _, id in ipairs(redis.call('ZRANGE', qo, 0, -1)) do
    if redis.call('HEXISTS', q, id) == 0 then redis.call('ZREM', qo, id) end
  end
  local orphans, bytes = {}, 0
  local all = redis.call('HGETALL', q)
  for i = 1, #all, 2 do
    bytes = bytes + #cjson.decode(all[i + 1])[5]
    if not redis.call('ZSCORE', qo, all[i]) then
      orphans[#orphans + 1] = {string.match(all[i + 1], '^%[(%d+)'), all[i]}
    end
  end
  table.sort(orphans, function(a, b)
    if #a[1] ~= #b[1] then return #a[1] < #b[1] end
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  for _, o in ipairs(orphans) do redis.call('ZADD', qo, redis.call('HINCRBY', 'cq:qseq', member, 1), o[2]) end
  if #all > 0 then
    redis.call('HSET', 'cq:qbytes', member, bytes)
    redis.call('SADD', 'cq:qkeys', member)
  else
    redis.call('DEL', qo)
    redis.call('HDEL', 'cq:qbytes', member)
    redis.call('SREM', 'cq:qkeys', member)
  end
  return bytes
end
"""

#: Up to ARGV[2] messages after position ARGV[1]: [position, message, ...]. With a node (ARGV[3]), the
#: user's lease (KEYS[3]) is taken or renewed for ARGV[4] ms first; held by another node: {-1, ms left}.
#: An empty page hands nothing out: the lease is let go at once (a login with nothing queued holds none).
#: A queue whose order does not match its messages (``_RECONCILE_FN``: the counts differ, or the page meets
#: a position whose message is gone) is put right first.
_PAGE = _RECONCILE_FN + """
if ARGV[3] ~= '' then
  local holder = redis.call('GET', KEYS[3])
  if holder and holder ~= ARGV[3] then return {-1, redis.call('PTTL', KEYS[3])} end
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
end
local function read()
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, ARGV[2])
  local out = {}
  for i = 1, #ids, 2 do
    local value = redis.call('HGET', KEYS[1], ids[i])
    if not value then return nil end
    out[#out + 1] = ids[i + 1]
    out[#out + 1] = value
  end
  return out
end
local out = nil
if redis.call('HLEN', KEYS[1]) == redis.call('ZCARD', KEYS[2]) then out = read() end
if not out then  -- out of step: a message without a position, or a position without its message
  reconcile(KEYS[1], KEYS[2], ARGV[5])
  out = read()
end
if #out == 0 and ARGV[3] ~= '' then redis.call('DEL', KEYS[3]) end
return out
"""

#: Put one queue's order right (``_RECONCILE_FN``); returns its bytes.
_RECONCILE = _RECONCILE_FN + "return reconcile(KEYS[1], KEYS[2], ARGV[1])"

#: A message a node of the previous version queued (``HSET`` only): give it the next position, once.
_ADOPT = """
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 and not redis.call('ZSCORE', KEYS[2], ARGV[2]) then
  redis.call('ZADD', KEYS[2], redis.call('HINCRBY', 'cq:qseq', ARGV[1], 1), ARGV[2])
  redis.call('HINCRBY', 'cq:qbytes', ARGV[1], ARGV[3])
end
return 1
"""

#: Messages a node of the previous version deleted (``HDEL`` only, or ``DEL`` of the whole queue): their
#: positions go too; the bytes are recounted, unless the queue is now empty (then it leaves no key).
_FORGET = _RECONCILE_FN + """
if #ARGV > 1 then redis.call('ZREM', KEYS[2], unpack(ARGV, 2)) end
return reconcile(KEYS[1], KEYS[2], ARGV[1])
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


#: Data of the previous version (before channel offsets): a channel's kept entries without an offset are
#: numbered in order, after its last offset, or 1, 2, ... in a fresh epoch (ARGV[2]) if it has none.
_NUMBER_HISTORY = _NUMBER_TAIL + "number_tail(KEYS[1], ARGV[1], ARGV[2]) return 1"


async def load(conn: RedisConnection, *, migrate: bool = True) -> list[Record]:
    """Every record the keys hold, in the order that rebuilds a fresh hub."""
    names = ("cq:auth", "cq:udata", "cq:revoked", "cq:settings", "cq:seen", "cq:epoch", "cq:off")
    reads: list[Command] = [["HGETALL", k] for k in names]
    replies = await conn.pipeline([*reads, ["SMEMBERS", "cq:hkeys"]])
    hkeys = [m.decode() for m in replies[7]]
    lists: list[Command] = [["LRANGE", f"cq:h:{m}", 0, -1] for m in hkeys]
    more = await conn.pipeline(lists)
    numbered = {m for m, _ in hash_pairs(replies[5])}
    old = [m for m, items in zip(hkeys, more, strict=True)
           if m not in numbered or (items and not _has_offset(items[-1]))]
    if migrate and old:  # written before channel offsets (or by a node of that version): number, read again
        await conn.pipeline([["EVAL", _NUMBER_HISTORY, 1, f"cq:h:{m}", m, uuid.uuid4().hex[:16]] for m in old])
        return await load(conn, migrate=False)
    return _records_from_keys(replies[:7], dict(zip(hkeys, more, strict=True)))


def _has_offset(item: bytes) -> bool:
    """A history entry of this version: [id, time, event, message, user id, offset]."""
    return len(orjson.loads(item)) == len(dataclasses.fields(HistoryEntry))


async def queue_sizes(conn: RedisConnection, *, check_all: bool = False) -> list[tuple[int, int, int, int]]:
    """Each queue's (dev, user, messages, bytes); a queue whose order does not match its messages (data of
    an earlier version, or of a node of the previous version during a rolling upgrade) is put right first.
    Found by its counts; ``check_all`` (a node of the previous version is live: it may have queued one
    message and deleted another of the same queue, counts equal) puts every queue right."""
    (members,) = await conn.pipeline([["SMEMBERS", "cq:qkeys"]])
    qkeys = [m.decode() for m in members or ()]
    cmds: list[Command] = []
    for m in qkeys:
        cmds += [["HLEN", f"cq:q:{m}"], ["ZCARD", f"cq:qo:{m}"], ["HGET", "cq:qbytes", m]]
    replies = await conn.pipeline(cmds) if cmds else []
    sizes: list[tuple[int, int, int, int]] = []
    for i, member in enumerate(qkeys):
        count, ordered, nbytes = replies[3 * i: 3 * i + 3]
        if (count or ordered) and (ordered != count or check_all):
            (nbytes,) = await conn.pipeline([["EVAL", _RECONCILE, *_queue_keys(member), member]])
        dev, uid = _dev_and(member)
        if count:
            sizes.append((dev, int(uid), int(count), int(nbytes or 0)))
    return sizes


def old_node_commands(rec: Record) -> list[Command]:
    """What a node of this version runs for a record a node of the previous version wrote (its keys in that
    version's layout), so that the keys are as this version would have left them: a queued message gets
    its position, deleted ones lose theirs, a cleared channel its epoch. An ``AppendHistory``'s one command
    answers the (epoch, offset) the entry was given (``_NUMBER_OLD``). Nothing for other records: their keys
    are the same in both versions."""
    match rec:
        case r.QueueMessage():
            member = f"{rec.dev_id}:{rec.user_id}"
            return [["EVAL", _ADOPT, *_queue_keys(member), member, rec.entry.id, rec.entry.nbytes]]
        case r.DeleteQueued():
            member = f"{rec.dev_id}:{rec.user_id}"
            return [["EVAL", _FORGET, *_queue_keys(member), member, *(rec.ids or ())]]
        case r.AppendHistory():
            member = f"{rec.dev_id}:{rec.channel}"
            return [["EVAL", _NUMBER_OLD, 1, f"cq:h:{member}", member, rec.entry.id]]
        case r.ClearHistory() | r.DeletePipeSettings():
            member = f"{rec.dev_id}:{rec.channel}"
            return [["HDEL", "cq:epoch", member], ["HDEL", "cq:off", member]]
        case _:
            return []


#: How long a node holds a user's lease after reading a page of the user's queue.
LEASE_MS = 2000


async def queue_page(conn: RedisConnection, dev_id: int, user_id: int, after: int, limit: int,
                     node: str = "") -> list[tuple[int, QueuedMessage]]:
    """Up to ``limit`` messages of a user's queue after position ``after``, oldest first.

    With ``node``: only while no other node holds the user's lease (taken or renewed here), so two
    nodes never hand out the same backlog at once; raises ``QueueClaimed`` otherwise."""
    member = f"{dev_id}:{user_id}"
    keys: list[Arg] = [3, f"cq:q:{member}", f"cq:qo:{member}", f"cq:ql:{member}"]
    (reply,) = await conn.pipeline([["EVAL", _PAGE, *keys, after, limit, node, LEASE_MS, member]])
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
