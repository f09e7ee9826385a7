"""What one node tells the others, as plain values.

With a shared store (Redis) several nodes serve one cluster. Each node's hub
owns its own browser sessions and keeps a *view* of every other node's
sessions (``RemoteSession``): enough to count channel members, answer
``users_in_pipes``/``users_time`` for the whole cluster, send ``track_*`` and
``user_status_*`` events to its own sessions, and know whether a user is online
somewhere. Frames are never sent to a remote session: the node that owns it
delivers, when it gets the ``Published``/``UserMessage`` event.

The hub returns these events in a ``Broadcast`` effect; the I/O layer ships
them (with the node id) and feeds other nodes' events back into
``Hub.remote_events``. Durable records travel separately, as the store's own
replication of ``Persist``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._subscriber import ConnInfo

__all__ = [
    "ClusterEvent",
    "Kick",
    "Published",
    "RemoteSession",
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


ClusterEvent = Published | UserMessage | SessionOpened | SessionSubscribed | SessionClosed | Kick


@dataclass(eq=False, slots=True)
class RemoteSession:
    """Another node's browser session, as this node sees it. ``send``/``close`` do nothing:
    frames for it are delivered by its own node."""

    node: str
    conn_id: int
    dev_id: int
    user_id: int
    info: ConnInfo
    channels: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[str, int]:
        return (self.node, self.conn_id)

    @classmethod
    def from_event(cls, node: str, ev: SessionOpened) -> RemoteSession:
        info = ConnInfo(uuid=ev.uuid, user_agent=ev.user_agent, ip=ev.ip, origin=ev.origin, language=ev.language)
        return cls(node, ev.conn_id, ev.dev_id, ev.user_id, info)

    def send(self, frame: bytes) -> None:
        pass

    def close(self, reason: str) -> None:
        pass


def opened_event(conn_id: int, dev_id: int, user_id: int, info: ConnInfo, channels: tuple[str, ...]) -> SessionOpened:
    return SessionOpened(conn_id, dev_id, user_id, info.uuid, info.user_agent, info.ip, info.origin, info.language,
                         channels)
