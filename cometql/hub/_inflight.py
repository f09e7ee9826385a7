"""Decisions about records that are not stored yet (the hub's side of two-phase statements).

A statement's records change ``DurableState`` only once the store has them
(``Hub.settle``), in the store's commit order. Until then a concurrent
statement reads the state without them, which is right for every decision but
those that must count what is in flight. ``InFlight`` holds those reservations:

- messages being queued for a user (``queueing``): the queue bound counts them
  with the stored ones, and a message may bypass the queue only when none is;
- a user whose last session closed is still online for ``users_time`` until
  the ``SetLastSeen`` is stored (``leaving``): never "unknown" in between.

(Messages being handed out are the feeds' business, ``_feeds``: a feed keeps
the ids whose deletion is in flight.) A reservation ends when its record is
stored or refused (``release``).

Imports only ``records``; no I/O.
"""

from __future__ import annotations

from .records import QueueMessage, Record, SetLastSeen

__all__ = ["InFlight"]


class InFlight:
    __slots__ = ("_queueing", "leaving")

    def __init__(self) -> None:
        self._queueing: dict[tuple[int, int], tuple[int, int]] = {}  # (dev_id, user_id) -> (messages, bytes)
        #: (dev_id, user_id) -> how many of their SetLastSeen are in flight; read-only outside this class.
        self.leaving: dict[tuple[int, int], int] = {}

    def hold(self, rec: Record) -> None:
        """``rec`` is decided, not stored yet."""
        if type(rec) is SetLastSeen:
            key = (rec.dev_id, rec.user_id)
            self.leaving[key] = self.leaving.get(key, 0) + 1
        elif type(rec) is QueueMessage:
            key = (rec.dev_id, rec.user_id)
            count, size = self._queueing.get(key, (0, 0))
            self._queueing[key] = (count + 1, size + rec.entry.nbytes)

    def queueing(self, key: tuple[int, int]) -> tuple[int, int] | None:
        """Messages (count, bytes) being queued for a user, None if none."""
        return self._queueing.get(key)

    def release(self, rec: Record) -> None:
        """``rec`` is stored or refused: what it reserved is free."""
        if type(rec) is SetLastSeen:
            key = (rec.dev_id, rec.user_id)
            left = self.leaving.pop(key, 1) - 1
            if left > 0:
                self.leaving[key] = left
        elif type(rec) is QueueMessage:
            key = (rec.dev_id, rec.user_id)
            count, size = self._queueing.pop(key, (1, 0))
            if count > 1:
                self._queueing[key] = (count - 1, size - rec.entry.nbytes)
