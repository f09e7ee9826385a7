"""The store interface: where durable records go and come back from.

A store is opened as an async context manager (it may run background tasks,
such as a group-commit writer). ``load`` returns the records that rebuild the
hub's durable state; ``write`` returns only once the records are durable, which
is what lets an INSERT that queues a message be acknowledged honestly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ..hub import Record

__all__ = ["MemoryStore", "SharedStore", "Store"]


class Store(Protocol):
    #: Human-readable description printed at start-up ("sqlite:/var/lib/cometql/comet.db").
    description: str

    async def load(self) -> list[Record]:
        """Records that rebuild durable state, in the order they must be applied."""
        ...

    async def write(self, records: Sequence[Record]) -> None:
        """Make records durable; raises ``StoreError`` if that is impossible."""
        ...


@runtime_checkable
class SharedStore(Protocol):
    """A store several nodes share (Redis): it also carries the hub's ``Broadcast`` events.

    ``submit`` takes records and cluster events of one ``apply``, in order, and
    returns once the store has them all: the other nodes then see a record and
    the events around it in the order this node produced them. ``post`` queues
    events alone (nothing durable) in the same order without waiting.
    """

    description: str

    async def load(self) -> list[Record]: ...

    async def write(self, records: Sequence[Record]) -> None: ...

    async def submit(self, values: Sequence[Any]) -> None: ...

    def post(self, values: Sequence[Any]) -> bool: ...


class MemoryStore:
    """Keeps records in a list: for tests and for running without persistence."""

    description = "memory (nothing survives a restart)"

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def load(self) -> list[Record]:
        return list(self.records)

    async def write(self, records: Sequence[Record]) -> None:
        self.records.extend(records)
