"""Decisions about records that are not stored yet (the hub's side of two-phase statements).

A statement's records change ``DurableState`` only once the store has them
(``Hub.settle``), in the store's commit order. Until then a concurrent
statement reads the state without them, which is right for every decision but
one kind: handing something out that a record in flight already handed out.
``InFlight`` holds those reservations:

- queued messages given to a session whose ``DeleteQueued`` is not stored yet
  are not given to the user's next session as well (``take``);
- a user whose last session closed is still online for ``users_time`` until
  the ``SetLastSeen`` is stored (``leaving``): never "unknown" in between.

A reservation ends when its record is stored or refused (``release``); a
refused ``DeleteQueued`` leaves the messages queued, to be handed out again.

Imports only ``records``; no I/O.
"""

from __future__ import annotations

from .records import DeleteQueued, QueuedMessage, Record, SetLastSeen

__all__ = ["InFlight"]


class InFlight:
    __slots__ = ("_flushing", "leaving")

    def __init__(self) -> None:
        self._flushing: dict[tuple[int, int], set[str]] = {}  # (dev_id, user_id) -> ids being handed out
        #: (dev_id, user_id) -> how many of their SetLastSeen are in flight; read-only outside this class.
        self.leaving: dict[tuple[int, int], int] = {}

    def hold(self, rec: Record) -> None:
        """``rec`` is decided, not stored yet."""
        if type(rec) is SetLastSeen:
            key = (rec.dev_id, rec.user_id)
            self.leaving[key] = self.leaving.get(key, 0) + 1

    def take(self, dev_id: int, user_id: int, entries: list[QueuedMessage]) -> list[QueuedMessage]:
        """Of a user's queued ``entries``, those no one is handing out yet, now reserved."""
        key = (dev_id, user_id)
        taken = self._flushing.get(key)
        if taken:
            entries = [e for e in entries if e.id not in taken]
        if entries:
            self._flushing.setdefault(key, set()).update(e.id for e in entries)
        return entries

    def release(self, rec: Record) -> None:
        """``rec`` is stored or refused: what it reserved is free."""
        if type(rec) is SetLastSeen:
            key = (rec.dev_id, rec.user_id)
            left = self.leaving.pop(key, 1) - 1
            if left > 0:
                self.leaving[key] = left
        elif type(rec) is DeleteQueued and rec.ids is not None:
            key = (rec.dev_id, rec.user_id)
            taken = self._flushing.get(key)
            if taken is not None:
                taken.difference_update(rec.ids)
                if not taken:
                    del self._flushing[key]
