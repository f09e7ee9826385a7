"""The remote side: other nodes' browser sessions, as this node's hub sees them (see ``events``).

``RemoteSessions`` owns the view of every other node's sessions: by node, by
channel and by user. Only that node's bus entries change it (``SessionOpened``,
``SessionSubscribed``, ``SessionClosed``, applied in stream order), plus
``sync`` (a node's full session list, at start-up or after an outage) and
``drop`` (a node is gone). Rules:

1. It keeps what routing and the cluster-wide SELECTs need: per session its
   ids, ``ConnInfo`` and channels; per user only how many sessions each node
   holds. Without a cluster it stays empty.
2. It never builds effects and knows nothing of this node's own sessions:
   each change returns *transitions* (a session's channels changed, a user's
   first session appeared on the other nodes, a user's last one is gone) and
   the hub turns them into effects, deciding with its own sessions. Likewise
   ``reroutes`` only answers whether this node must route a user message again.
3. Replaying what it has seen already changes nothing (a node's snapshot and
   its events overlap): opening a known session only updates its channels.

``Presence`` (``_presence``) holds it beside this node's indexes and reads
``channels`` and ``users`` directly on its hot paths; only this class writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from ._frames import NO_CAPS
from ._subscriber import ConnInfo
from .events import SessionOpened, UserMessage

__all__ = ["ChannelsChanged", "RemoteSession", "RemoteSessions", "Transition", "UserAppeared", "UserGone",
           "opened_event"]


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
    caps: ClassVar[frozenset[str]] = NO_CAPS  # never delivered to here: its own node knows its capabilities

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


@dataclass(frozen=True, slots=True)
class ChannelsChanged:
    """A remote session left ``left`` and then joined ``joined`` (members of ``track_*`` ones are told)."""

    session: RemoteSession
    left: tuple[str, ...]
    joined: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UserAppeared:
    """The user's first session on the other nodes (none of them held one before)."""

    dev_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class UserGone:
    """The user's last session on the other nodes is gone."""

    dev_id: int
    user_id: int


Transition = ChannelsChanged | UserAppeared | UserGone


class RemoteSessions:
    """Every other node's sessions, indexed by node, channel and user."""

    __slots__ = ("_nodes", "channels", "users")

    def __init__(self) -> None:
        self._nodes: dict[str, dict[int, RemoteSession]] = {}  # node -> conn_id -> session
        #: (dev_id, channel) -> {(node, conn_id): session}; read-only outside this class.
        self.channels: dict[tuple[int, str], dict[tuple[str, int], RemoteSession]] = {}
        #: (dev_id, user_id) -> {node: how many of the user's sessions it holds}; never an empty dict.
        self.users: dict[tuple[int, int], dict[str, int]] = {}

    def nodes(self) -> dict[str, int]:
        """Other nodes with live sessions, and how many each holds."""
        return {node: len(sessions) for node, sessions in self._nodes.items() if sessions}

    def sessions(self) -> Iterator[RemoteSession]:
        """Every other node's sessions."""
        for sessions in self._nodes.values():
            yield from sessions.values()

    def reroutes(self, ev: UserMessage, me: str | None) -> bool:
        """Whether node ``me``, a target of ``ev`` that no longer holds the user, must route it again.

        The first target decides for all of them, and only once no target holds a
        session of the user (one that still does delivers it): the user left every
        target meanwhile, so the message goes to a node the user moved to, or is queued.
        """
        if not ev.nodes or ev.nodes[0] != me:
            return False
        holders = self.users.get((ev.dev_id, ev.user_id), {})
        return not any(node in holders for node in ev.nodes)

    def open(self, node: str, ev: SessionOpened) -> list[Transition]:
        sessions = self._nodes.setdefault(node, {})
        known = sessions.get(ev.conn_id)
        if known is not None and (known.dev_id, known.user_id) == (ev.dev_id, ev.user_id):
            # seen already (a node's snapshot and its events overlap): only the channels may differ
            return [self._move(known, ev.channels)] if known.channels != ev.channels else []
        changes = self.close(node, ev.conn_id) if known is not None else []
        rs = RemoteSession.from_event(node, ev)
        sessions[ev.conn_id] = rs
        if rs.user_id > 0:
            key = (rs.dev_id, rs.user_id)
            per_node = self.users.get(key)
            if per_node is None:
                per_node = self.users[key] = {}
                changes.append(UserAppeared(rs.dev_id, rs.user_id))
            per_node[node] = per_node.get(node, 0) + 1
        if ev.channels:
            changes.append(self._move(rs, ev.channels))
        return changes

    def subscribe(self, node: str, conn_id: int, channels: tuple[str, ...]) -> list[Transition]:
        rs = self._nodes.get(node, {}).get(conn_id)
        return [self._move(rs, channels)] if rs is not None else []

    def close(self, node: str, conn_id: int) -> list[Transition]:
        rs = self._nodes.get(node, {}).pop(conn_id, None)
        if rs is None:
            return []
        changes: list[Transition] = [self._move(rs, ())] if rs.channels else []
        if rs.user_id <= 0:
            return changes
        key = (rs.dev_id, rs.user_id)
        per_node = self.users.get(key, {})
        left = per_node.get(node, 0) - 1
        if left > 0:
            per_node[node] = left
        else:
            per_node.pop(node, None)
        if not per_node:
            self.users.pop(key, None)
            changes.append(UserGone(rs.dev_id, rs.user_id))
        return changes

    def sync(self, node: str, sessions: Iterable[SessionOpened]) -> list[Transition]:
        """Make the view of ``node`` equal to its full session list."""
        current = self._nodes.get(node, {})
        wanted = {s.conn_id: s for s in sessions}
        changes: list[Transition] = []
        for cid in [c for c in current if c not in wanted]:
            changes.extend(self.close(node, cid))
        for ev in wanted.values():
            changes.extend(self.open(node, ev))
        if not self._nodes.get(node):
            self._nodes.pop(node, None)
        return changes

    def drop(self, node: str) -> list[Transition]:
        """``node`` is gone: forget all its sessions."""
        changes: list[Transition] = []
        for cid in list(self._nodes.get(node, ())):
            changes.extend(self.close(node, cid))
        self._nodes.pop(node, None)
        return changes

    def _move(self, rs: RemoteSession, channels: tuple[str, ...]) -> ChannelsChanged:
        index = self.channels
        for channel in rs.channels:
            ckey = (rs.dev_id, channel)
            members = index.get(ckey)
            if members is not None:
                members.pop(rs.key, None)
                if not members:
                    del index[ckey]
        for channel in channels:
            index.setdefault((rs.dev_id, channel), {})[rs.key] = rs
        change = ChannelsChanged(rs, rs.channels, channels)
        rs.channels = channels
        return change
