"""The store interface: where durable records go and come back from.

A store is opened as an async context manager (it may run background tasks,
such as a group-commit writer). ``load`` returns the records that rebuild the
hub's durable state; ``commit`` is the one call the engine makes with what one
``apply`` must store or ship, and the store decides whether that waits:

* records: ``commit`` returns only once they are durable, which is what lets an
  INSERT that queues a message be acknowledged honestly;
* cluster events alone (only a clustered store, ``cometql.cluster``, gets any):
  queued in order without waiting, unless the store is far behind.

A single node's stores (memory, SQLite) never see cluster events: the hub
returns them only when it is one node of a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..hub import Change, Record, is_record

__all__ = ["MemoryStore", "Store", "records_only"]


class Store(Protocol):
    #: Human-readable description printed at start-up ("sqlite:/var/lib/cometql/comet.db").
    description: str

    async def load(self) -> list[Record]:
        """Records that rebuild durable state, in the order they must be applied."""
        ...

    async def commit(self, changes: Sequence[Change]) -> None:
        """Store records and ship cluster events, in this order.

        Returns once the records are durable (raises ``StoreError`` if that is
        impossible); changes without a record may return at once.
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

    async def load(self) -> list[Record]:
        return list(self.records)

    async def commit(self, changes: Sequence[Change]) -> None:
        self.records.extend(records_only(changes))
