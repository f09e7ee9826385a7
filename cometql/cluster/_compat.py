"""Rolling upgrades: nodes of this version and of the previous one in one cluster, losing nothing.

Why a compatibility window at all: a cluster is upgraded one node at a time
(``docs/scaling.md``, "Rolling upgrade"), so for a while nodes of two versions
share the bus and the keys. Why only one version back: each window costs code
on the hot paths of both sides; the previous version is the one a running
cluster has when this one is installed. A cluster two versions behind is
upgraded in two rolls.

The previous version is the one before reliable delivery (channel offsets and
epochs, paged queues with positions, acknowledgements and leases). What differs:

* **Bus entries.** Its codec wants exactly its own fields: an ``AppendHistory``
  without ``epoch`` whose entry has no ``offset``, a ``DeleteQueued`` without
  ``nbytes``. An entry it cannot decode is skipped whole, so while a node of
  that version is in the cluster this version writes its entries in that
  format (``encode``) and puts what it leaves out beside it: the offsets are in
  field ``o`` already (``store.redis.ASSIGNED``), the deleted bytes in field
  ``qb``. Entries of the previous version decode here as they are (the codec
  accepts fields added since with a default missing).
* **Keys.** It queues a message with ``HSET`` only and deletes with ``HDEL``
  only (no position in ``cq:qo``, no byte count), and appends history entries
  without an offset. A node of this version reading such a record from the bus
  runs ``store.redis.old_node_commands`` before applying it: the message gets
  its position (a page would not see it otherwise), deleted ones lose theirs,
  and a history entry gets the channel's next offset in list order, which every
  node of this version then uses. What was written while no node of this
  version was following is put right by a page that finds a queue out of step,
  and at start-up (every queue, if a node of the previous version is live:
  ``_keys.old_nodes_live``; see ``store.redis``).

How a node of the previous version is recognised: every node of this version
keeps ``cq:v:<node>`` (its version, expiring with its session hash); a live node
(in ``cq:nodes``) without it is of the previous version. A node learns this when
it starts (``Cluster.join``), when another node joins or re-syncs, and forgets an
old node when that node leaves or is dropped as silent. Mistaking a node of this
version for an old one costs only the old format, which this version reads too.
"""

from __future__ import annotations

from dataclasses import replace

import orjson

from ..hub import Change, is_record
from ..hub.records import AppendHistory, DeleteQueued
from ..store import codec
from ..store.redis import old_node_commands
from ..store.resp import Arg, Command, RedisConnection, Reply, ReplyError

__all__ = ["VERSION", "Compat", "decode", "encode", "upgrade_old", "version_key"]

#: The bus and key format of this version (the previous one wrote no version: ``None``).
VERSION = 2


def version_key(node: str) -> str:
    return f"cq:v:{node}"


class Compat:
    """Which live nodes are of the previous version (``old``): while any is, entries are written for them."""

    __slots__ = ("old",)

    def __init__(self) -> None:
        self.old: set[str] = set()

    @property
    def active(self) -> bool:
        return bool(self.old)

    def seen(self, node: str, version: Reply) -> None:
        """A live node and its ``cq:v`` value (None: the previous version)."""
        if version is None:
            self.old.add(node)
        else:
            self.old.discard(node)

    def gone(self, node: str) -> None:
        self.old.discard(node)


def _old_list(value: Change) -> list[object]:
    """A value as the previous version's codec wants it: the fields it knows, no more."""
    item = codec.to_list(value)
    if type(value) is AppendHistory:  # [tag, dev, channel, entry, keep, epoch]: no epoch, no entry offset
        entry = item[3]
        assert isinstance(entry, list)
        return [*item[:3], entry[:-1], item[4]]
    if type(value) is DeleteQueued:  # [tag, dev, user, ids, nbytes]: no nbytes
        return item[:4]
    return item


def encode(values: list[Change], old_nodes: bool) -> list[Arg]:
    """A bus entry's data fields: ``d`` in this version's format, or with ``old_nodes`` in the previous
    one's, plus ``qb``, the bytes of each ``DeleteQueued`` in order (what this version's nodes count)."""
    if not old_nodes:
        return ["d", codec.encode_many(values)]
    fields: list[Arg] = ["d", orjson.dumps([_old_list(v) for v in values])]
    deleted = [v.nbytes for v in values if type(v) is DeleteQueued]
    if deleted:
        fields += ["qb", orjson.dumps(deleted)]
    return fields


def decode(data: dict[bytes, bytes]) -> list[Change]:
    """A bus entry's values (without the offsets of field ``o``: ``follower._assigned`` adds them)."""
    values = codec.decode_many(data[b"d"])
    if b"qb" in data:
        sizes = iter(orjson.loads(data[b"qb"]))
        values = [DeleteQueued(v.dev_id, v.user_id, v.ids, next(sizes)) if type(v) is DeleteQueued else v
                  for v in values]
    return values


async def upgrade_old(conn: RedisConnection, values: list[Change]) -> list[Change]:
    """An entry of a node of the previous version: put its keys in this version's layout (one round trip)
    and give its history entries the offsets Redis assigned; one no longer kept (trimmed before it was
    numbered) is not applied to history, its message is still delivered live."""
    per_value: list[list[Command]] = [old_node_commands(v) if is_record(v) else [] for v in values]
    commands = [c for cmds in per_value for c in cmds]
    if not commands:
        return values
    replies = await conn.pipeline(commands)
    errors = [r for r in replies if isinstance(r, ReplyError)]
    if errors:
        raise errors[0]
    out: list[Change] = []
    i = 0
    for value, cmds in zip(values, per_value, strict=True):
        reply = replies[i] if cmds else None
        i += len(cmds)
        if type(value) is AppendHistory:
            if not isinstance(reply, list):
                continue  # trimmed away before numbered: not in history anywhere
            epoch, offset = reply
            value = replace(value, epoch=epoch.decode(), entry=replace(value.entry, offset=int(offset)))
        out.append(value)
    return out
