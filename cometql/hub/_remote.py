"""The remote side: other nodes' browser sessions, as this node's hub sees them (see ``events``).

``RemoteSessions`` owns the view of every other node's sessions. Only that
node's bus entries change it (``SessionOpened``, ``SessionSubscribed``,
``SessionClosed``, applied in stream order), plus ``sync`` (a node's full
session list, at start-up or after an outage) and ``drop`` (a node is gone).
Rules:

1. It keeps what this node needs, no more: every node holds every other
   node's sessions, so its cost is paid (nodes − 1) times per session. Per
   session one entry, conn id → ``(dev_id, user_id, channels)``, a tuple
   shared by all sessions alike (all anonymous sessions of one channel share
   one); per channel a subscriber count; per user how many sessions each
   node holds (routing, online state). That is what undoing a session's
   change (its next subscription, its close) needs, and what a replay needs
   to change nothing. A session's ``ConnInfo`` (uuid, user agent, ip...) is
   kept only while it is in a ``track_`` channel (its members are told its
   uuid when it leaves, and ``track_pipe_users`` lists them); a node joining
   a ``track_`` channel sends a full ``SessionOpened`` for that (``Hub.subscribe``).
   ``users_in_pipes`` reads the others from the node's session hash in Redis
   (``members`` marks them ``described=False``). Measured: 0.77 KB per
   session per other node with a ``RemoteSession`` each, about 0.1 KB this way
   (docs/scaling.md).
2. It never builds effects and knows nothing of this node's own sessions:
   each change returns *transitions* (a session's ``track_`` channels changed,
   a user's first session appeared on the other nodes, a user's last one is
   gone) and the hub turns them into effects, deciding with its own sessions.
   Likewise ``reroutes`` only answers whether this node must route a user
   message again.
3. Replaying what it has seen already changes nothing (a node's snapshot and
   its events overlap): opening a known session only updates its channels.

``Presence`` (``_presence``) holds it beside this node's indexes and reads
``channels`` and ``users`` directly on its hot paths; only this class writes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from ._frames import NO_CAPS
from ._shared import Shared
from ._subscriber import ConnInfo
from .events import SessionOpened, UserMessage

__all__ = ["ChannelsChanged", "RemoteSession", "RemoteSessions", "Transition", "UserAppeared", "UserGone",
           "info_of", "opened_event", "tracks"]

#: A remote session as held: (dev_id, user_id, channels); one shared tuple for all sessions alike.
_Rec = tuple[int, int, tuple[str, ...]]
_NO_INFO = ConnInfo()


def tracks(channels: Iterable[str]) -> bool:
    """Whether a channel list has a ``track_`` channel (whose members are told who joins and leaves)."""
    return any(c.startswith("track_") for c in channels)


@dataclass(eq=False, slots=True)
class RemoteSession:
    """Another node's browser session, built when asked for (``members``, transitions). ``send``/``close``
    do nothing: frames for it are delivered by its own node. ``described``: ``info`` is what the session
    sent (False: this node does not hold it, ``info`` is empty; its node's session hash in Redis has it)."""

    node: str
    conn_id: int
    dev_id: int
    user_id: int
    info: ConnInfo
    channels: tuple[str, ...] = field(default=())
    described: bool = True
    caps: ClassVar[frozenset[str]] = NO_CAPS  # never delivered to here: its own node knows its capabilities

    @property
    def key(self) -> tuple[str, int]:
        return (self.node, self.conn_id)

    def send(self, frame: bytes) -> None:
        pass

    def close(self, reason: str) -> None:
        pass


def opened_event(conn_id: int, dev_id: int, user_id: int, info: ConnInfo, channels: tuple[str, ...]) -> SessionOpened:
    return SessionOpened(conn_id, dev_id, user_id, info.uuid, info.user_agent, info.ip, info.origin, info.language,
                         channels)


def info_of(ev: SessionOpened) -> ConnInfo:
    return ConnInfo(uuid=ev.uuid, user_agent=ev.user_agent, ip=ev.ip, origin=ev.origin, language=ev.language)


@dataclass(frozen=True, slots=True)
class ChannelsChanged:
    """A remote session left ``left`` and then joined ``joined``, one of them with a ``track_`` channel
    (whose members are told)."""

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
    """Every other node's sessions: one shared record each, counts per channel, session counts per user."""

    __slots__ = ("_info", "_nodes", "_shared", "channels", "users")

    def __init__(self) -> None:
        self._nodes: dict[str, dict[int, _Rec]] = {}  # node -> conn_id -> record
        self._shared: Shared[_Rec] = Shared()  # the one copy of each record
        #: (node, conn_id) -> info (None: not sent, by a node that predates this), while in a track_ channel.
        self._info: dict[tuple[str, int], ConnInfo | None] = {}
        #: (dev_id, channel) -> subscribers on the other nodes; never 0; read-only outside this class.
        self.channels: dict[tuple[int, str], int] = {}
        #: (dev_id, user_id) -> {node: how many of the user's sessions it holds}; never an empty dict.
        self.users: dict[tuple[int, int], dict[str, int]] = {}

    # ------------------------------------------------------------------ reads

    def nodes(self) -> dict[str, int]:
        """Other nodes with live sessions, and how many each holds."""
        return {node: len(sessions) for node, sessions in self._nodes.items() if sessions}

    def dev_sessions(self) -> Counter[int]:
        """Other nodes' sessions per dev_id."""
        counts: Counter[int] = Counter()
        for sessions in self._nodes.values():
            for dev, _, _ in sessions.values():
                counts[dev] += 1
        return counts

    def channel_users(self) -> dict[tuple[int, str], set[int]]:
        """(dev_id, channel) -> the logged-in users subscribed on other nodes (one walk: for the census)."""
        out: dict[tuple[int, str], set[int]] = {}
        for sessions in self._nodes.values():
            for dev, uid, channels in sessions.values():
                if uid > 0:
                    for channel in channels:
                        out.setdefault((dev, channel), set()).add(uid)
        return out

    def members(self, dev_id: int, channels: Collection[str]) -> dict[str, list[RemoteSession]]:
        """Other nodes' subscribers of ``channels``, by channel, in node order then opening order. Only
        ``track_`` channels: a walk over the sessions in one (``track_pipe_users``, a browser command); else
        a walk over every record (``users_in_pipes``): a per-channel index would cost as much as the records."""
        wanted = {c for c in channels if (dev_id, c) in self.channels}
        out: dict[str, list[RemoteSession]] = {}
        if not wanted:
            return out
        info = self._info
        if all(c.startswith("track_") for c in wanted):  # a browser may ask often: no walk over every record
            held_by = [(key, self._nodes[key[0]][key[1]]) for key in info]
        else:  # the few shared records that match, then the sessions holding one of them (by identity)
            hits = {id(rec) for rec in self._shared.values() if rec[0] == dev_id and not wanted.isdisjoint(rec[2])}
            held_by = [((node, cid), rec) for node, sessions in self._nodes.items()
                       for cid, rec in sessions.items() if id(rec) in hits]
        for (node, cid), (dev, uid, held) in held_by:
            if dev != dev_id:
                continue
            for channel in held:
                if channel in wanted:
                    known = info.get((node, cid))
                    out.setdefault(channel, []).append(
                        RemoteSession(node, cid, dev, uid, known or _NO_INFO, held, known is not None))
        return out

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

    # ---------------------------------------------------------------- changes

    def open(self, node: str, ev: SessionOpened) -> list[Transition]:
        sessions = self._nodes.setdefault(node, {})
        known = sessions.get(ev.conn_id)
        if known is not None and known[0] == ev.dev_id and known[1] == ev.user_id:
            # seen already (a node's snapshot and its events overlap), or it joined a track_ channel: only the
            # channels may differ
            return self._rechannel(node, ev.conn_id, known, ev.channels, ev)
        changes = self.close(node, ev.conn_id) if known is not None else []
        sessions[ev.conn_id] = self._shared.hold((ev.dev_id, ev.user_id, ()))
        if ev.user_id > 0:
            key = (ev.dev_id, ev.user_id)
            per_node = self.users.get(key)
            if per_node is None:
                per_node = self.users[key] = {}
                changes.append(UserAppeared(ev.dev_id, ev.user_id))
            per_node[node] = per_node.get(node, 0) + 1
        if ev.channels:
            changes.extend(self._rechannel(node, ev.conn_id, sessions[ev.conn_id], ev.channels, ev))
        return changes

    def subscribe(self, node: str, conn_id: int, channels: tuple[str, ...]) -> list[Transition]:
        rec = self._nodes.get(node, {}).get(conn_id)
        return self._rechannel(node, conn_id, rec, channels, None) if rec is not None else []

    def close(self, node: str, conn_id: int) -> list[Transition]:
        sessions = self._nodes.get(node)
        rec = sessions.get(conn_id) if sessions is not None else None
        if sessions is None or rec is None:
            return []
        changes = self._rechannel(node, conn_id, rec, (), None) if rec[2] else []
        self._shared.release(sessions.pop(conn_id))
        dev, uid, _ = rec
        if uid <= 0:
            return changes
        key = (dev, uid)
        per_node = self.users.get(key, {})
        left = per_node.get(node, 0) - 1
        if left > 0:
            per_node[node] = left
        else:
            per_node.pop(node, None)
        if not per_node:
            self.users.pop(key, None)
            changes.append(UserGone(dev, uid))
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

    # --------------------------------------------------------------- internals

    def _rechannel(self, node: str, conn_id: int, rec: _Rec, channels: tuple[str, ...],
                   ev: SessionOpened | None) -> list[Transition]:
        """Move a held session from its channels to ``channels`` (``ev``: its full description, if sent)."""
        dev, uid, old = rec
        key = (node, conn_id)
        before = tracks(old)
        after = tracks(channels)
        info = info_of(ev) if ev is not None and (before or after) else self._info.get(key)
        if after:
            self._info[key] = info
        else:
            self._info.pop(key, None)
        if old == channels:
            return []
        counts = self.channels
        for channel in old:
            ckey = (dev, channel)
            left = counts[ckey] - 1
            if left:
                counts[ckey] = left
            else:
                del counts[ckey]
        for channel in channels:
            ckey = (dev, channel)
            counts[ckey] = counts.get(ckey, 0) + 1
        sessions = self._nodes[node]
        if sessions.get(conn_id) is rec:
            sessions[conn_id] = self._shared.hold((dev, uid, channels))
            self._shared.release(rec)
        if not (before or after):
            return []
        session = RemoteSession(node, conn_id, dev, uid, info or _NO_INFO, channels, info is not None)
        return [ChannelsChanged(session, old, channels)]
