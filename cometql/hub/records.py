"""Durable changes, as plain values: the one registry of record types.

The hub never writes anything itself: each state change that must survive a
restart is described by one of these records and handed to the store, which
applies it. The store replays the same records into a fresh hub at start-up, so
"what is persisted" and "what is restored" cannot drift apart.

``Record`` is the closed union of record types and ``RECORD_TYPES`` is derived
from it: codecs, stores and tests take their lists from here, and code that
dispatches over records uses ``match`` + ``assert_never``, so adding a record is
the record class here plus one case per store (a type checker finds them).
Imports nothing but the standard library.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import TypeAlias, TypeGuard

__all__ = [
    "AddRevokedToken",
    "AppendHistory",
    "ChannelPosition",
    "ClearHistory",
    "DeleteAuth",
    "DeleteHistoryIds",
    "DeletePipeSettings",
    "DeleteQueued",
    "DeleteRevokedToken",
    "DeleteUserData",
    "ENTRY_TYPES",
    "HistoryEntry",
    "QueueMessage",
    "QueuedMessage",
    "RECORD_TYPES",
    "Record",
    "SetAuth",
    "SetLastSeen",
    "SetPipeSettings",
    "SetUserData",
    "is_record",
]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One stored channel message (a row of ``pipes_messages``).

    ``offset`` is its place in the channel's stream (1, 2, ...; see ``AppendHistory``), 0 while
    not assigned yet: offsets are assigned when the message is stored, never when it is decided.
    """

    id: str
    time: int
    event: str
    message: str
    user_id: int = 0
    offset: int = 0


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One message waiting in a user's queue until delivered (a row of ``users_messages``)."""

    id: str
    time: int
    event: str
    message: str

    @property
    def nbytes(self) -> int:
        """What the message counts toward its user's queue bound: its text, UTF-8."""
        return len(self.message.encode())


@dataclass(frozen=True, slots=True)
class SetAuth:
    dev_id: int
    user_id: int
    hash: str


@dataclass(frozen=True, slots=True)
class DeleteAuth:
    dev_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class SetUserData:
    dev_id: int
    user_id: int
    data: str


@dataclass(frozen=True, slots=True)
class DeleteUserData:
    dev_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class AddRevokedToken:
    dev_id: int
    token: str


@dataclass(frozen=True, slots=True)
class DeleteRevokedToken:
    dev_id: int
    token: str


@dataclass(frozen=True, slots=True)
class SetPipeSettings:
    dev_id: int
    channel: str
    length: int


@dataclass(frozen=True, slots=True)
class DeletePipeSettings:
    """Removes the settings row and the channel's history (CppComet does both), and its position:
    the channel's next message starts a new epoch."""

    dev_id: int
    channel: str


@dataclass(frozen=True, slots=True)
class AppendHistory:
    """Append one message; the store keeps only the newest ``keep`` (0 = keep all).

    The message gets the channel's next offset and the channel's epoch, assigned where the record
    is applied, in commit order (the store and memory count alike): a channel without a position
    starts a new epoch, named after this entry's id. ``epoch`` is empty until then; it is set
    (with ``entry.offset``) when an authority has assigned both (Redis, in a cluster; a store's
    ``load``), and applying such a record takes them as they are.
    """

    dev_id: int
    channel: str
    entry: HistoryEntry
    keep: int
    epoch: str = ""


@dataclass(frozen=True, slots=True)
class ChannelPosition:
    """A channel's epoch and last offset as a store keeps them (``load``: even with no entry left)."""

    dev_id: int
    channel: str
    epoch: str
    offset: int


@dataclass(frozen=True, slots=True)
class ClearHistory:
    """Drops the channel's history and position: its next message starts a new epoch."""

    dev_id: int
    channel: str


@dataclass(frozen=True, slots=True)
class DeleteHistoryIds:
    dev_id: int
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QueueMessage:
    dev_id: int
    user_id: int
    entry: QueuedMessage


@dataclass(frozen=True, slots=True)
class DeleteQueued:
    """Drop queued messages of a user: exactly ``ids``, or all of them when ``ids`` is None.

    ``nbytes``: the size of the ``ids``' texts (UTF-8), so that every node keeps each user's
    queue size (count and bytes, for the bound) without holding the messages."""

    dev_id: int
    user_id: int
    ids: tuple[str, ...] | None
    nbytes: int = 0


@dataclass(frozen=True, slots=True)
class SetLastSeen:
    dev_id: int
    user_id: int
    time: int


Record: TypeAlias = (
    SetAuth
    | DeleteAuth
    | SetUserData
    | DeleteUserData
    | AddRevokedToken
    | DeleteRevokedToken
    | SetPipeSettings
    | DeletePipeSettings
    | AppendHistory
    | ChannelPosition
    | ClearHistory
    | DeleteHistoryIds
    | QueueMessage
    | DeleteQueued
    | SetLastSeen
)

#: Every record type, in the union's order.
RECORD_TYPES: tuple[type[Record], ...] = typing.get_args(Record)
#: Values nested in records (a field of ``AppendHistory`` / ``QueueMessage``).
ENTRY_TYPES: tuple[type[HistoryEntry | QueuedMessage], ...] = (HistoryEntry, QueuedMessage)

_RECORD_SET: frozenset[type] = frozenset(RECORD_TYPES)


def is_record(value: object) -> TypeGuard[Record]:
    """True for a record (not a cluster event nor anything else)."""
    return type(value) in _RECORD_SET
