"""What one node tells the others, as plain values: the registry of cluster events.

With a shared store (Redis) several nodes serve one cluster. Each node's hub
owns its own browser sessions and keeps a *view* of every other node's
sessions (``RemoteSession``, in ``_remote``): enough to count channel members,
answer ``users_in_pipes``/``users_time`` for the whole cluster, send ``track_*``
and ``user_status_*`` events to its own sessions, and know whether a user is
online somewhere. Frames are never sent to a remote session: the node that owns
it delivers, when it gets the ``Published``/``UserMessage`` event.

The hub returns these events in a ``Broadcast`` effect; the I/O layer ships
them (with the node id) and feeds other nodes' bus entries back into
``Hub.remote_changes``, records and events in stream order. Durable records
travel with them on the same ordered bus, as the store's replication of
``Persist``: a ``Change`` is either, and a store commits changes in the order
the hub produced them.

``ClusterEvent`` is the closed union and ``EVENT_TYPES`` is derived from it (the
codec takes its list from here). Imports nothing of CometQL but ``records``.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import TypeAlias

from .records import Record

__all__ = [
    "EVENT_TYPES",
    "Change",
    "ClusterEvent",
    "Kick",
    "Published",
    "SessionClosed",
    "SessionOpened",
    "SessionSubscribed",
    "UserMessage",
]


@dataclass(frozen=True, slots=True)
class Published:
    """A channel message: every other node delivers it to its own subscribers."""

    dev_id: int
    channel: str
    event: str
    message: str
    time: int
    user_id: int | None  # the browser sender of a web_pipe2, None for an INSERT


@dataclass(frozen=True, slots=True)
class UserMessage:
    """A users_messages row for a user online on ``nodes``: each of them delivers to its sessions."""

    dev_id: int
    user_id: int
    event: str
    message: str
    time: int
    nodes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SessionOpened:
    conn_id: int
    dev_id: int
    user_id: int
    uuid: str = ""
    user_agent: str = ""
    ip: str = ""
    origin: str = ""
    language: str = ""
    channels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SessionSubscribed:
    """The session's whole channel set now (``subscription`` replaces it)."""

    conn_id: int
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SessionClosed:
    conn_id: int


@dataclass(frozen=True, slots=True)
class Kick:
    """Close every session of these users (authorization removed, token revoked)."""

    dev_id: int
    user_ids: tuple[int, ...]
    reason: str


ClusterEvent: TypeAlias = Published | UserMessage | SessionOpened | SessionSubscribed | SessionClosed | Kick

#: Every cluster event type, in the union's order.
EVENT_TYPES: tuple[type[ClusterEvent], ...] = typing.get_args(ClusterEvent)

#: What a store commits and the bus carries: durable records and cluster events, in the hub's order.
Change: TypeAlias = Record | ClusterEvent
