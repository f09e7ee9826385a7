"""The store interface: where durable records go and come back from.

A store is opened as an async context manager (it may run background tasks,
such as a group-commit writer). ``load`` returns the records that rebuild the
hub's durable state; ``commit`` is the one call the engine makes with what one
``apply`` must store or ship, and the store decides whether that waits:

* records: ``commit`` returns only once they are durable, which is what lets an
  INSERT that queues a message be acknowledged honestly;
* cluster events alone (only a clustered store, ``cometql.cluster``, gets any):
  queued in order without waiting, unless the store is far behind.

Each ``commit`` call is one statement's: it is stored or refused as a whole,
and never fails another call's records (a group commit isolates them). The
store calls its ``settle`` with the outcome before the call returns or raises,
in the order the changes are stored: that is where the hub applies records to
memory (two-phase statements), so memory follows the store's order even when
waiters wake in another.

Personal-message queues are never loaded whole: ``load`` leaves them out,
``queue_sizes`` gives each user's count and bytes (the hub's bound), and
``queue_page`` reads a page of one user's queue after a store position, in
order (the engine does it for the hub's ``LoadQueue``). Messages are appended
and deleted by id through records (``QueueMessage``, ``DeleteQueued``), each
delete an index lookup, never a scan.

A single node's stores (memory, SQLite) never see cluster events: the hub
returns them only when it is one node of a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..hub import Change, Position, QueuedMessage, Record, is_record
from ..hub import records as r

__all__ = ["MemoryStore", "QueueSize", "Settle", "Store", "no_settle", "records_only"]

#: (dev_id, user_id, messages, bytes) of one user's queue.
QueueSize = tuple[int, int, int, int]

class Settle(Protocol):
    """Told a ``commit``'s outcome (True: stored) once it is known, in the store's commit order; a
    store whose authority assigns channel offsets (Redis) also passes the (epoch, offset) of each
    ``AppendHistory`` stored, in order (a single node counts them in memory as the store does)."""

    def __call__(self, stored: bool, positions: Sequence[Position] = (), /) -> None: ...


def no_settle(stored: bool, positions: Sequence[Position] = (), /) -> None:
    """The ``settle`` of a caller that keeps nothing in memory (tools, tests)."""


class Store(Protocol):
    #: Human-readable description printed at start-up ("sqlite:/var/lib/cometql/comet.db").
    description: str

    async def load(self) -> list[Record]:
        """Records that rebuild durable state, in the order they must be applied (no queued message)."""
        ...

    async def probe(self) -> str | None:
        """A write through the store's commit path with nothing in it (the canary): raises ``StoreError``
        if the store cannot take writes now. A clustered store returns the bus entry id it wrote."""
        ...

    async def queue_sizes(self) -> list[QueueSize]:
        """Every non-empty queue's size: what the hub keeps of queues (``Hub.restore``)."""
        ...

    async def queue_page(self, dev_id: int, user_id: int, after: int, limit: int, *,
                         claim: bool = True) -> list[tuple[int, QueuedMessage]]:
        """Up to ``limit`` stored messages of a user's queue after position ``after``, oldest first,
        each with its position (increasing, never reused for that user). Raises ``StoreError``.

        ``claim``: the page is read to be handed out; in a cluster only one node at a time may do
        that for a user (``QueueClaimed`` otherwise). Reads that hand nothing out (SELECT) pass False."""
        ...

    async def commit(self, changes: Sequence[Change], settle: Settle = no_settle, *, lazy: bool = False) -> None:
        """Store records and ship cluster events, in this order, as one statement.

        ``lazy``: nothing waits on these records but their own settle (deleting delivered messages);
        a store may hold them briefly to share a transaction with others.

        Returns once the records are durable (raises ``StoreError`` if that is
        impossible, and then none of them is stored); changes without a record may
        return at once. ``settle`` is called with the outcome first (never when
        there is no record), in commit order, even if the caller was cancelled meanwhile.
        """
        ...


def records_only(changes: Sequence[Change]) -> list[Record]:
    """The records of a single node's commit; a cluster event there is a wiring mistake."""
    records = [c for c in changes if is_record(c)]
    if len(records) != len(changes):
        raise TypeError("cluster events reached a single node's store (a hub with a node_id needs a cluster)")
    return records


class MemoryStore:
    """Keeps records in a list: for tests and for running without persistence."""

    description = "memory (nothing survives a restart)"

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._queues: dict[tuple[int, int], dict[str, tuple[int, QueuedMessage]]] = {}
        self._seq = 0

    async def load(self) -> list[Record]:
        return [rec for rec in self.records if type(rec) not in (r.QueueMessage, r.DeleteQueued)]

    async def probe(self) -> str | None:
        """Nothing to prove: memory always takes writes."""
        return None

    async def queue_sizes(self) -> list[QueueSize]:
        return [(d, u, len(q), sum(e.nbytes for _, e in q.values())) for (d, u), q in self._queues.items() if q]

    async def queue_page(self, dev_id: int, user_id: int, after: int, limit: int, *,
                         claim: bool = True) -> list[tuple[int, QueuedMessage]]:
        queue = self._queues.get((dev_id, user_id), {})
        return [item for item in queue.values() if item[0] > after][:limit]

    async def commit(self, changes: Sequence[Change], settle: Settle = no_settle, *, lazy: bool = False) -> None:
        records = records_only(changes)
        self.records.extend(records)
        for rec in records:
            if type(rec) is r.QueueMessage:
                self._seq += 1
                self._queues.setdefault((rec.dev_id, rec.user_id), {})[rec.entry.id] = (self._seq, rec.entry)
            elif type(rec) is r.DeleteQueued:
                queue = self._queues.get((rec.dev_id, rec.user_id), {})
                for mid in queue.copy() if rec.ids is None else rec.ids:
                    queue.pop(mid, None)
        if records:
            settle(True)
