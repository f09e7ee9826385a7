"""Durable state: what survives a restart, and the one table that applies a record to it.

``DurableState`` owns auth hashes, user data, revoked tokens, pipe settings,
channel history, the size of users' message queues (count and bytes: the
messages themselves stay in the store, read a page at a time) and last-seen
times, each keyed by ``dev_id``. It knows nothing of sessions or nodes. Rules:

1. Only ``apply`` changes it, one ``Record`` at a time, through a ``match`` that
   ends in ``assert_never`` (a new record type fails type checking until it has
   its case). The hub applies its records once stored, ``restore`` applies what a
   store kept, ``merge`` what another node stored: one code path, so memory after
   a restart equals memory before it. The one exception is queue sizes at
   start-up (``restore_queues``): the store counts them, since it never returns
   the queued messages themselves.
2. Everything else here is a read: the accessors never change state, and what
   they return is a copy or an immutable value.
3. No ids, no clock: a record carries its ids and times, made by the caller.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import deque
from collections.abc import Iterable
from typing import assert_never

from . import records as r
from .records import HistoryEntry, Record

__all__ = ["MAX_HISTORY", "DurableState", "Position"]

MAX_HISTORY = 1000  # CppComet's MAX_LOG_LENGTH: pipes_settings.length is clamped to it

Key = tuple[int, int]  # (dev_id, user_id)
ChannelKey = tuple[int, str]  # (dev_id, channel)
Position = tuple[str, int]  # a channel's (epoch, last offset)


class DurableState:
    """The durable state of every dev_id, changed only by applying records."""

    __slots__ = ("_auth", "_user_data", "_revoked", "_settings", "_history", "_positions", "_queues", "_queued",
                 "_last_seen")

    def __init__(self) -> None:
        self._auth: dict[Key, str] = {}
        self._user_data: dict[Key, str] = {}
        self._revoked: dict[int, dict[str, None]] = {}  # dev -> tokens, in insertion order
        self._settings: dict[ChannelKey, int] = {}
        self._history: dict[ChannelKey, deque[HistoryEntry]] = {}  # never holds an empty deque; by offset
        self._positions: dict[ChannelKey, Position] = {}  # channels with a stream: (epoch, last offset)
        self._queues: dict[Key, tuple[int, int]] = {}  # (messages, bytes); never holds an empty queue
        #: The sum of the queues' message counts, kept as they change: status polls and metric scrapes
        #: read it in O(1), not by walking every user's queue (1,000 users: ~1 ms per SHOW STATUS).
        self._queued = 0
        self._last_seen: dict[Key, int] = {}

    # ------------------------------------------------------------------ changes

    def restore(self, records: Iterable[Record]) -> None:
        """Rebuild from the records a store kept, in the order it returns them."""
        for rec in records:
            self.apply(rec)

    def merge(self, rec: Record) -> bool:
        """Apply a record another node stored; False (and no change) if it is here already.

        Only a history entry can arrive twice: at start-up the bus replays what the
        loaded snapshot may already hold. Every other record is idempotent.
        """
        if isinstance(rec, r.AppendHistory) and any(
                e.id == rec.entry.id for e in self._history.get((rec.dev_id, rec.channel), ())):
            return False
        self.apply(rec)
        return True

    def apply(self, rec: Record) -> None:
        match rec:
            case r.SetAuth():
                self._auth[(rec.dev_id, rec.user_id)] = rec.hash
            case r.DeleteAuth():
                self._auth.pop((rec.dev_id, rec.user_id), None)
            case r.SetUserData():
                self._user_data[(rec.dev_id, rec.user_id)] = rec.data
            case r.DeleteUserData():
                self._user_data.pop((rec.dev_id, rec.user_id), None)
            case r.AddRevokedToken():
                self._revoked.setdefault(rec.dev_id, {})[rec.token] = None
            case r.DeleteRevokedToken():
                self._revoked.get(rec.dev_id, {}).pop(rec.token, None)
            case r.SetPipeSettings():
                self._settings[(rec.dev_id, rec.channel)] = rec.length
            case r.DeletePipeSettings():
                self._settings.pop((rec.dev_id, rec.channel), None)
                self._history.pop((rec.dev_id, rec.channel), None)
                self._positions.pop((rec.dev_id, rec.channel), None)
            case r.AppendHistory():
                self._append(rec)
            case r.ChannelPosition():
                self._positions[(rec.dev_id, rec.channel)] = (rec.epoch, rec.offset)
            case r.ClearHistory():
                self._history.pop((rec.dev_id, rec.channel), None)
                self._positions.pop((rec.dev_id, rec.channel), None)
            case r.DeleteHistoryIds():
                wanted = set(rec.ids)
                for (dev, channel), entries in list(self._history.items()):
                    if dev == rec.dev_id and any(e.id in wanted for e in entries):
                        kept = deque(e for e in entries if e.id not in wanted)
                        if kept:
                            self._history[(dev, channel)] = kept
                        else:
                            del self._history[(dev, channel)]
            case r.QueueMessage():
                key = (rec.dev_id, rec.user_id)
                count, size = self._queues.get(key, (0, 0))
                self._queues[key] = (count + 1, size + rec.entry.nbytes)
                self._queued += 1
            case r.DeleteQueued():
                key = (rec.dev_id, rec.user_id)
                if rec.ids is None:
                    self._queued -= self._queues.pop(key, (0, 0))[0]
                elif key in self._queues:
                    count, size = self._queues[key]
                    left = count - len(rec.ids)
                    if left > 0:
                        self._queues[key] = (left, max(0, size - rec.nbytes))
                        self._queued -= len(rec.ids)
                    else:
                        del self._queues[key]
                        self._queued -= count
            case r.SetLastSeen():
                self._last_seen[(rec.dev_id, rec.user_id)] = rec.time
            case _:
                assert_never(rec)

    def _append(self, rec: r.AppendHistory) -> None:
        """Append with the channel's next offset (or the one an authority assigned), trim to ``keep``."""
        key = (rec.dev_id, rec.channel)
        pos = self._positions.get(key)
        entry = rec.entry
        if rec.epoch:  # assigned (Redis, a store's load): a new epoch means the old stream is gone
            epoch, offset = rec.epoch, entry.offset
            if pos is not None and pos[0] != epoch:
                self._history.pop(key, None)
                pos = None
            last = max(offset, pos[1] if pos is not None else 0)
        else:  # counted here, in commit order, as the store counts
            epoch, offset = pos if pos is not None else (entry.id, 0)
            offset = last = offset + 1
            entry = dataclasses.replace(entry, offset=offset)
        self._positions[key] = (epoch, last)
        log = self._history.setdefault(key, deque())
        if log and offset < log[-1].offset:  # in a cluster a node may apply its own message first
            log.insert(bisect.bisect(log, offset, key=lambda e: e.offset), entry)
        else:
            log.append(entry)
        while rec.keep and len(log) > rec.keep:
            log.popleft()

    # -------------------------------------------------------------------- reads

    def auth_hash(self, dev_id: int, user_id: int) -> str | None:
        return self._auth.get((dev_id, user_id))

    def user_data(self, dev_id: int, user_id: int) -> str | None:
        return self._user_data.get((dev_id, user_id))

    def revoked_tokens(self, dev_id: int) -> list[str]:
        return list(self._revoked.get(dev_id, ()))

    def is_revoked(self, dev_id: int, token: str) -> bool:
        return token in self._revoked.get(dev_id, ())

    def pipe_settings(self, dev_id: int, channel: str) -> int | None:
        return self._settings.get((dev_id, channel))

    def history_keep(self, dev_id: int, channel: str) -> int:
        """How many messages the channel's history keeps (0 = history off)."""
        length = self._settings.get((dev_id, channel), 0)
        if length:
            return length
        return MAX_HISTORY if channel.startswith("trust_") else 0

    def history(self, dev_id: int, channel: str) -> list[HistoryEntry]:
        """The channel's history, oldest first."""
        return list(self._history.get((dev_id, channel), ()))

    def position(self, dev_id: int, channel: str) -> Position | None:
        """The channel's epoch and last offset; None before its first message (or after a reset)."""
        return self._positions.get((dev_id, channel))

    def history_after(self, dev_id: int, channel: str, epoch: str, offset: int) -> list[HistoryEntry] | None:
        """The messages after ``offset`` in ``epoch``, oldest first; None when they cannot all be
        given (a gap): another epoch, or older than the kept history. ``epoch`` "" means a
        reader that knew no epoch: everything of the current one after ``offset``."""
        cur_epoch, last = self._positions.get((dev_id, channel), ("", 0))
        if epoch and epoch != cur_epoch or offset > last:
            return None
        log = self._history.get((dev_id, channel), ())
        first = log[0].offset if log else last + 1
        if offset + 1 < first:
            return None
        return [e for e in log if e.offset > offset]

    def has_history(self, dev_id: int, channel: str) -> bool:
        return (dev_id, channel) in self._history

    def restore_queues(self, sizes: Iterable[tuple[int, int, int, int]]) -> None:
        """Set the size of users' queues (dev_id, user_id, messages, bytes), as a store counted them."""
        for dev_id, user_id, count, size in sizes:
            if count > 0:
                self._queued += count - self._queues.get((dev_id, user_id), (0, 0))[0]
                self._queues[(dev_id, user_id)] = (count, size)

    def queue_size(self, dev_id: int, user_id: int) -> tuple[int, int]:
        """A user's queued messages (stored, not yet delivered): (count, bytes)."""
        return self._queues.get((dev_id, user_id), (0, 0))

    def has_queue(self, dev_id: int, user_id: int) -> bool:
        return (dev_id, user_id) in self._queues

    def queued_messages(self) -> int:
        """Messages queued for offline users, over every dev_id."""
        return self._queued

    def last_seen(self, dev_id: int, user_id: int) -> int | None:
        """When the user's last session closed (unix seconds), if it ever did."""
        return self._last_seen.get((dev_id, user_id))

    def seen_users(self, dev_id: int) -> list[int]:
        """Users of a dev with a last-seen time."""
        return [u for (d, u) in self._last_seen if d == dev_id]
