"""The hub: all live and durable state of one CometQL node, as a plain object.

Rules of this module:

1. No I/O, no trio, no clock. Callers pass ``now`` (unix seconds) and get back
   a list of effects (``Deliver``, ``Persist``, ``Disconnect``) to apply.
2. Every piece of state is scoped by ``dev_id``; keys are ``(dev_id, x)``.
3. A durable change updates memory *and* returns the record that persists it;
   ``restore`` replays those records, so memory after a restart equals memory
   before it.

Subscribers are opaque handles (see ``_subscriber``): the hub indexes them by
channel and by user and decides who gets which frame.

A hub given a ``node_id`` is one node of a cluster (see ``events``): it also
returns ``Broadcast`` effects for the other nodes, and keeps their sessions as
``RemoteSession`` views so that counts, presence and events are cluster-wide.
"""

from __future__ import annotations

import heapq
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, assert_never

from . import _frames
from ._auth import hash_matches, jwt_secret, jwt_user_id
from ._effects import Broadcast, Deliver, Disconnect, Effect, Persist
from ._remote import RemoteSession, opened_event
from ._subscriber import Subscriber
from .events import ClusterEvent, Kick, Published, SessionClosed, SessionOpened, SessionSubscribed, UserMessage
from .records import (
    AddRevokedToken,
    AppendHistory,
    ClearHistory,
    DeleteAuth,
    DeleteHistoryIds,
    DeletePipeSettings,
    DeleteQueued,
    DeleteRevokedToken,
    DeleteUserData,
    HistoryEntry,
    QueuedMessage,
    QueueMessage,
    Record,
    SetAuth,
    SetLastSeen,
    SetPipeSettings,
    SetUserData,
)

__all__ = ["Hub", "HubStatistics", "MAX_HISTORY", "MAX_USER_CONNECTIONS"]

MAX_HISTORY = 1000  # CppComet's MAX_LOG_LENGTH: pipes_settings.length is clamped to it
MAX_USER_CONNECTIONS = 16

Key = tuple[int, int]
ChannelKey = tuple[int, str]


def _new_id() -> str:
    return str(uuid.uuid1())


@dataclass(frozen=True, slots=True)
class HubStatistics:
    sessions: int
    authorized_users: int
    channels: int
    subscriptions: int
    queued_messages: int
    published: int
    delivered_to_users: int
    queued: int


class Hub:
    """Channels, subscribers, presence, queues, history and auth for every dev_id."""

    def __init__(
        self,
        *,
        password: str,
        send_user_online_events: bool = True,
        send_user_offline_events: bool = True,
        new_id: Callable[[], str] = _new_id,
        max_subscriptions: int = 32,
        node_id: str | None = None,
    ) -> None:
        self.password = password
        #: Channels one browser session may subscribe to (CppComet: 32); read by the ``subscription`` command.
        self.max_subscriptions = max_subscriptions
        self.send_user_online_events = send_user_online_events
        self.send_user_offline_events = send_user_offline_events
        self._new_id = new_id
        #: This node's id in a cluster; None for a single node (no Broadcast effects at all).
        self.node_id = node_id
        # live state
        self._sessions: dict[int, Subscriber] = {}
        self._channels: dict[ChannelKey, dict[int, Subscriber]] = {}
        self._sub_channels: dict[int, tuple[str, ...]] = {}  # tuples: idle sessions are many
        self._users: dict[Key, dict[int, Subscriber]] = {}
        # other nodes' sessions (empty without a cluster)
        self._remote: dict[str, dict[int, RemoteSession]] = {}
        self._remote_channels: dict[ChannelKey, dict[tuple[str, int], RemoteSession]] = {}
        self._remote_users: dict[Key, dict[str, int]] = {}  # user -> {node: its sessions there}
        # durable state
        self._auth: dict[Key, str] = {}
        self._user_data: dict[Key, str] = {}
        self._revoked: dict[int, dict[str, None]] = {}
        self._settings: dict[ChannelKey, int] = {}
        self._history: dict[ChannelKey, deque[HistoryEntry]] = {}
        self._queues: dict[Key, dict[str, QueuedMessage]] = {}
        self._last_seen: dict[Key, int] = {}
        # counters
        self._published = 0
        self._delivered_to_users = 0
        self._queued = 0

    # ------------------------------------------------------------------ restore

    def restore(self, records: Iterable[Record]) -> None:
        """Rebuild durable state from records a store has kept (no effects)."""
        for rec in records:
            self._apply(rec)

    def _apply(self, rec: Record) -> None:
        match rec:
            case SetAuth():
                self._auth[(rec.dev_id, rec.user_id)] = rec.hash
            case DeleteAuth():
                self._auth.pop((rec.dev_id, rec.user_id), None)
            case SetUserData():
                self._user_data[(rec.dev_id, rec.user_id)] = rec.data
            case DeleteUserData():
                self._user_data.pop((rec.dev_id, rec.user_id), None)
            case AddRevokedToken():
                self._revoked.setdefault(rec.dev_id, {})[rec.token] = None
            case DeleteRevokedToken():
                self._revoked.get(rec.dev_id, {}).pop(rec.token, None)
            case SetPipeSettings():
                self._settings[(rec.dev_id, rec.channel)] = rec.length
            case DeletePipeSettings():
                self._settings.pop((rec.dev_id, rec.channel), None)
                self._history.pop((rec.dev_id, rec.channel), None)
            case AppendHistory():
                log = self._history.setdefault((rec.dev_id, rec.channel), deque())
                log.append(rec.entry)
                while rec.keep and len(log) > rec.keep:
                    log.popleft()
            case ClearHistory():
                self._history.pop((rec.dev_id, rec.channel), None)
            case DeleteHistoryIds():
                wanted = set(rec.ids)
                for (dev, channel), entries in list(self._history.items()):
                    if dev == rec.dev_id and any(e.id in wanted for e in entries):
                        kept = deque(e for e in entries if e.id not in wanted)
                        if kept:
                            self._history[(dev, channel)] = kept
                        else:
                            del self._history[(dev, channel)]
            case QueueMessage():
                self._queues.setdefault((rec.dev_id, rec.user_id), {})[rec.entry.id] = rec.entry
            case DeleteQueued():
                key = (rec.dev_id, rec.user_id)
                if rec.ids is None:
                    self._queues.pop(key, None)
                else:
                    queue = self._queues.get(key)
                    if queue is not None:
                        for mid in rec.ids:
                            queue.pop(mid, None)
                        if not queue:
                            del self._queues[key]
            case SetLastSeen():
                self._last_seen[(rec.dev_id, rec.user_id)] = rec.time
            case _:
                assert_never(rec)

    def _persist(self, *records: Record) -> Persist:
        for rec in records:
            self._apply(rec)
        return Persist(records)

    # --------------------------------------------------------------- publishing

    def publish(
        self, dev_id: int, channel: str, event: str, message: str, now: int, *, user_id: int | None = None
    ) -> list[Effect]:
        """Fan a message out to a channel's subscribers and keep it in history if configured."""
        self._published += 1
        effects = self._keep_history(dev_id, channel, event, message, now, user_id or 0)
        subs = self._channels.get((dev_id, channel))
        if subs:
            effects.append(Deliver(tuple(subs.values()), _frames.pipe_frame(channel, event, message, now, user_id)))
        if self.node_id is not None:
            effects.append(Broadcast((Published(dev_id, channel, event, message, now, user_id),)))
        return effects

    def web_publish(
        self, sender: Subscriber, channel: str, event: str, message: str, user_id: int, now: int
    ) -> tuple[int, list[Effect]]:
        """A browser's ``web_pipe2``: every *other* subscriber of the channel gets it, stamped
        with the sender's user id. Returns how many sessions it was delivered to."""
        self._published += 1
        effects = self._keep_history(sender.dev_id, channel, event, message, now, user_id)
        subs = self._channels.get((sender.dev_id, channel), {})
        targets = tuple(s for cid, s in subs.items() if cid != sender.conn_id)
        if targets:
            effects.append(Deliver(targets, _frames.pipe_frame(channel, event, message, now, user_id)))
        if self.node_id is None:
            return len(targets), effects
        effects.append(Broadcast((Published(sender.dev_id, channel, event, message, now, user_id),)))
        return len(targets) + len(self._remote_channels.get((sender.dev_id, channel), ())), effects

    def _keep_history(
        self, dev_id: int, channel: str, event: str, message: str, now: int, user_id: int
    ) -> list[Effect]:
        keep = self.history_keep(dev_id, channel)
        if not keep:
            return []
        entry = HistoryEntry(self._new_id(), now, event or "undefined", message, user_id)
        return [self._persist(AppendHistory(dev_id, channel, entry, keep))]

    def history_keep(self, dev_id: int, channel: str) -> int:
        """How many messages the channel's history keeps (0 = history off)."""
        length = self._settings.get((dev_id, channel), 0)
        if length:
            return length
        return MAX_HISTORY if channel.startswith("trust_") else 0

    def send_to_user(self, dev_id: int, user_id: int, event: str, message: str, now: int) -> list[Effect]:
        """Deliver to every live session of a user, or queue durably while the user is offline."""
        conns = self._users.get((dev_id, user_id))
        if self._remote_users.get((dev_id, user_id)):
            self._delivered_to_users += 1
            nodes = tuple(sorted(self._remote_users[(dev_id, user_id)]))
            effects: list[Effect] = [Broadcast((UserMessage(dev_id, user_id, event, message, now, nodes),))]
            if conns:
                effects.append(Deliver(tuple(conns.values()), _frames.user_frame(event, message)))
            return effects
        if conns:
            self._delivered_to_users += 1
            return [Deliver(tuple(conns.values()), _frames.user_frame(event, message))]
        return self._queue(dev_id, user_id, event, message, now)

    def _queue(self, dev_id: int, user_id: int, event: str, message: str, now: int) -> list[Effect]:
        self._queued += 1
        entry = QueuedMessage(self._new_id(), now, event, message)
        return [self._persist(QueueMessage(dev_id, user_id, entry))]

    # ------------------------------------------------------------------ sessions

    def connect(self, sub: Subscriber, now: int) -> list[Effect]:
        """Register a session; an authorized one is linked to its user and gets its queue."""
        self._sessions[sub.conn_id] = sub
        self._sub_channels.setdefault(sub.conn_id, ())
        effects: list[Effect] = []
        if self.node_id is not None:
            effects.append(Broadcast((opened_event(sub.conn_id, sub.dev_id, sub.user_id, sub.info, ()),)))
        if sub.user_id <= 0:
            return effects
        key = (sub.dev_id, sub.user_id)
        conns = self._users.setdefault(key, {})
        remote = sum(self._remote_users.get(key, {}).values())
        if len(conns) + remote >= MAX_USER_CONNECTIONS:
            return [*effects, Disconnect((sub,), "too many sessions for this user")]
        first = not conns and not remote
        conns[sub.conn_id] = sub
        effects.extend(self._flush_queue(sub.dev_id, sub.user_id, (sub,)))
        if first:
            effects.extend(self._status(sub.dev_id, sub.user_id, "online"))
        return effects

    def _flush_queue(self, dev_id: int, user_id: int, targets: tuple[Subscriber, ...]) -> list[Effect]:
        """Hand a user's queued messages to ``targets`` and drop them from the queue."""
        queue = self._queues.get((dev_id, user_id))
        if not queue:
            return []
        entries = list(queue.values())
        effects: list[Effect] = [
            Deliver(targets, _frames.queued_user_frame(e.event, e.message, e.time)) for e in entries
        ]
        effects.append(self._persist(DeleteQueued(dev_id, user_id, tuple(e.id for e in entries))))
        return effects

    def _status(self, dev_id: int, user_id: int, status: str) -> list[Effect]:
        """``online``/``offline`` on user_status_<id>, to this node's subscribers (if enabled)."""
        wanted = self.send_user_online_events if status == "online" else self.send_user_offline_events
        subs = self._channels.get((dev_id, f"user_status_{user_id}")) if wanted else None
        if not subs:
            return []  # status_frame: no message_send_time, as CppComet (browser-wire.md §3.6)
        return [Deliver(tuple(subs.values()), _frames.status_frame(user_id, status))]

    def disconnect(self, sub: Subscriber, now: int) -> list[Effect]:
        """Forget a session; the user's last-seen time is stored when its last session goes."""
        if self._sessions.pop(sub.conn_id, None) is None:
            return []
        effects: list[Effect] = []
        if self.node_id is not None:
            effects.append(Broadcast((SessionClosed(sub.conn_id),)))
        effects.extend(self._leave(sub, self._sub_channels.pop(sub.conn_id, ()), self._channels, sub.conn_id, now))
        if sub.user_id <= 0:
            return effects
        key = (sub.dev_id, sub.user_id)
        conns = self._users.get(key)
        if conns is None or conns.pop(sub.conn_id, None) is None:
            return effects
        if conns:
            return effects
        del self._users[key]
        if self._remote_users.get(key):
            return effects
        effects.append(self._persist(SetLastSeen(sub.dev_id, sub.user_id, now)))
        effects.extend(self._status(sub.dev_id, sub.user_id, "offline"))
        return effects

    def subscribe(self, sub: Subscriber, channels: Iterable[str], now: int) -> list[Effect]:
        """Replace a session's channel set (CppComet's ``subscription`` semantics).

        ``private_*`` channels are skipped for anonymous sessions. Members of a
        ``track_*`` channel are told when someone leaves or joins it; a channel
        kept across the replacement counts as leave + join, as in CppComet.
        """
        wanted = [c for c in dict.fromkeys(channels) if sub.user_id > 0 or not c.startswith("private_")]
        effects = self._leave(sub, self._sub_channels.get(sub.conn_id, ()), self._channels, sub.conn_id, now)
        effects += self._join(sub, wanted, self._channels, sub.conn_id, now)
        self._sub_channels[sub.conn_id] = tuple(wanted)
        if self.node_id is not None:
            effects.append(Broadcast((SessionSubscribed(sub.conn_id, tuple(wanted)),)))
        return effects

    def subscriptions(self, conn_id: int) -> list[str]:
        return sorted(self._sub_channels.get(conn_id, ()))

    def _track(self, sub: Subscriber, channel: str, event: str, now: int) -> list[Effect]:
        members = self._channels.get((sub.dev_id, channel))
        if not members:
            return []
        frame = _frames.track_frame(channel, event, sub.user_id, sub.info.uuid, now)
        return [Deliver(tuple(members.values()), frame)]

    def _leave(self, sub: Subscriber, channels: Iterable[str], index: dict[ChannelKey, dict[Any, Any]],
               key: object, now: int) -> list[Effect]:
        """Take ``sub`` (under ``key``) out of ``index`` for these channels; tell ``track_*`` members."""
        effects: list[Effect] = []
        for channel in channels:
            ckey = (sub.dev_id, channel)
            members = index.get(ckey)
            if members is not None:
                members.pop(key, None)
                if not members:
                    del index[ckey]
            if channel.startswith("track_"):
                effects.extend(self._track(sub, channel, "unsubscription", now))
        return effects

    def _join(self, sub: Subscriber, channels: Iterable[str], index: dict[ChannelKey, dict[Any, Any]],
              key: object, now: int) -> list[Effect]:
        """Put ``sub`` into ``index`` for these channels; ``track_*`` members hear of it first."""
        effects: list[Effect] = []
        for channel in channels:
            if channel.startswith("track_"):
                effects.extend(self._track(sub, channel, "subscription", now))
            index.setdefault((sub.dev_id, channel), {})[key] = sub
        return effects

    # ---------------------------------------------------------------------- auth

    def authorize(self, dev_id: int, user_id: int, key: str, now: int) -> tuple[bool, list[Effect]]:
        """Check a browser login (hash or JWT). A first JWT login stores a random hash."""
        if user_id <= 0:
            return False, []
        stored = self._auth.get((dev_id, user_id))
        if hash_matches(stored, key):
            return True, []
        if key in self._revoked.get(dev_id, ()):
            return False, []
        if jwt_user_id(key, jwt_secret(self.password, dev_id), now) != user_id:
            return False, []
        if stored is None:
            return True, [self._persist(SetAuth(dev_id, user_id, uuid.uuid4().hex[:32]))]
        return True, []

    def set_auth(self, dev_id: int, user_id: int, hash_: str) -> list[Effect]:
        return [self._persist(SetAuth(dev_id, user_id, hash_))]

    def delete_auth(self, dev_id: int, user_ids: Iterable[int]) -> list[Effect]:
        """Remove hashes and close every live session of those users, on every node."""
        user_ids = list(user_ids)
        effects: list[Effect] = []
        for uid in user_ids:
            if (dev_id, uid) in self._auth or self.node_id is not None:  # another node may have just set it
                effects.append(self._persist(DeleteAuth(dev_id, uid)))
            conns = self._users.get((dev_id, uid))
            if conns:
                effects.append(Disconnect(tuple(conns.values()), "authorization removed"))
        kicked = tuple(u for u in user_ids if self._remote_users.get((dev_id, u)))
        if kicked:
            effects.append(Broadcast((Kick(dev_id, kicked, "authorization removed"),)))
        return effects

    def auth_hash(self, dev_id: int, user_id: int) -> str | None:
        return self._auth.get((dev_id, user_id))

    def revoke_token(self, dev_id: int, token: str, now: int) -> list[Effect]:
        """Store a revoked token; if it is a valid JWT of this dev, log its user out."""
        effects: list[Effect] = [self._persist(AddRevokedToken(dev_id, token))]
        uid = jwt_user_id(token, jwt_secret(self.password, dev_id), now)
        if uid is not None:
            effects.extend(self.delete_auth(dev_id, [uid]))
        return effects

    def unrevoke_tokens(self, dev_id: int, tokens: Iterable[str]) -> list[Effect]:
        known = self._revoked.get(dev_id, {})
        return [self._persist(DeleteRevokedToken(dev_id, t)) for t in tokens if t in known or self.node_id is not None]

    def revoked_tokens(self, dev_id: int) -> list[str]:
        return list(self._revoked.get(dev_id, {}))

    def is_revoked(self, dev_id: int, token: str) -> bool:
        return token in self._revoked.get(dev_id, {})

    # ---------------------------------------------------------------- user data

    def set_user_data(self, dev_id: int, user_id: int, data: str) -> list[Effect]:
        return [self._persist(SetUserData(dev_id, user_id, data))]

    def delete_user_data(self, dev_id: int, user_ids: Iterable[int]) -> list[Effect]:
        return [self._persist(DeleteUserData(dev_id, u)) for u in user_ids
                if (dev_id, u) in self._user_data or self.node_id is not None]

    def user_data(self, dev_id: int, user_id: int) -> str | None:
        return self._user_data.get((dev_id, user_id))

    # ------------------------------------------------------- settings & history

    def set_pipe_settings(self, dev_id: int, channel: str, length: int) -> list[Effect]:
        length = max(0, min(MAX_HISTORY, length))
        return [self._persist(SetPipeSettings(dev_id, channel, length))]

    def delete_pipe_settings(self, dev_id: int, channels: Iterable[str]) -> list[Effect]:
        return [self._persist(DeletePipeSettings(dev_id, c)) for c in channels]

    def pipe_settings(self, dev_id: int, channel: str) -> int | None:
        return self._settings.get((dev_id, channel))

    def history(self, dev_id: int, channel: str) -> list[HistoryEntry]:
        return list(self._history.get((dev_id, channel), ()))

    def clear_history(self, dev_id: int, channels: Iterable[str]) -> list[Effect]:
        return [self._persist(ClearHistory(dev_id, c)) for c in channels if (dev_id, c) in self._history]

    def delete_history_ids(self, dev_id: int, ids: Iterable[str]) -> list[Effect]:
        return [self._persist(DeleteHistoryIds(dev_id, tuple(ids)))]

    # -------------------------------------------------------------------- queues

    def queued(self, dev_id: int, user_id: int) -> list[QueuedMessage]:
        return list(self._queues.get((dev_id, user_id), {}).values())

    def delete_queued(self, dev_id: int, user_ids: Iterable[int]) -> list[Effect]:
        return [self._persist(DeleteQueued(dev_id, u, None)) for u in user_ids
                if (dev_id, u) in self._queues or self.node_id is not None]

    # ------------------------------------------------------------------ cluster

    def remote_events(self, node: str, events: Iterable[ClusterEvent], now: int) -> list[Effect]:
        """Apply another node's events: update the view of its sessions, deliver to ours."""
        effects: list[Effect] = []
        for ev in events:
            match ev:
                case Published():
                    subs = self._channels.get((ev.dev_id, ev.channel))
                    if subs:
                        frame = _frames.pipe_frame(ev.channel, ev.event, ev.message, ev.time, ev.user_id)
                        effects.append(Deliver(tuple(subs.values()), frame))
                case UserMessage():
                    effects.extend(self._remote_user_message(ev))
                case SessionOpened():
                    effects.extend(self._remote_open(node, ev, now))
                case SessionSubscribed():
                    rs = self._remote.get(node, {}).get(ev.conn_id)
                    if rs is not None:
                        effects.extend(self._remote_subscribe(rs, ev.channels, now))
                case SessionClosed():
                    effects.extend(self._remote_close(node, ev.conn_id, now, persist=False))
                case Kick():
                    for uid in ev.user_ids:
                        conns = self._users.get((ev.dev_id, uid))
                        if conns:
                            effects.append(Disconnect(tuple(conns.values()), ev.reason))
                case _:
                    assert_never(ev)
        return effects

    def remote_records(self, records: Iterable[Record]) -> list[Effect]:
        """Apply records another node stored. A message queued for a user who has just
        connected here (the other node did not know yet) is delivered at once."""
        effects: list[Effect] = []
        for rec in records:
            if isinstance(rec, AppendHistory) and any(e.id == rec.entry.id for e in self._history.get(
                    (rec.dev_id, rec.channel), ())):
                continue  # seen already: at start-up the bus replays what the loaded snapshot may hold
            self._apply(rec)
            if isinstance(rec, QueueMessage):
                conns = self._users.get((rec.dev_id, rec.user_id))
                if conns:
                    effects.extend(self._flush_queue(rec.dev_id, rec.user_id, tuple(conns.values())))
        return effects

    def sync_node(self, node: str, sessions: Iterable[SessionOpened], now: int) -> list[Effect]:
        """Make the view of ``node`` equal to its full session list (start-up, after an outage)."""
        current = self._remote.get(node, {})
        wanted = {s.conn_id: s for s in sessions}
        effects: list[Effect] = []
        for cid in [c for c in current if c not in wanted]:
            effects.extend(self._remote_close(node, cid, now, persist=False))
        for ev in wanted.values():
            effects.extend(self._remote_open(node, ev, now))
        if not self._remote.get(node):
            self._remote.pop(node, None)
        return effects

    def drop_node(self, node: str, now: int) -> list[Effect]:
        """A node is gone (stopped or silent too long): its sessions leave, and the
        last-seen time of users who are now offline everywhere is stored."""
        effects: list[Effect] = []
        for cid in list(self._remote.get(node, ())):
            effects.extend(self._remote_close(node, cid, now, persist=True))
        self._remote.pop(node, None)
        return effects

    def remote_nodes(self) -> dict[str, int]:
        """Other nodes with live sessions, and how many each holds."""
        return {node: len(sessions) for node, sessions in self._remote.items() if sessions}

    def _remote_user_message(self, ev: UserMessage) -> list[Effect]:
        if self.node_id not in ev.nodes:
            return []
        key = (ev.dev_id, ev.user_id)
        conns = self._users.get(key)
        if conns:
            return [Deliver(tuple(conns.values()), _frames.user_frame(ev.event, ev.message))]
        holders = self._remote_users.get(key, {})
        if any(node in holders for node in ev.nodes):
            return []  # left here, still on another target node: that node delivers it
        if ev.nodes[0] != self.node_id:
            return []  # one target decides for all of them: the first
        # the user left every target meanwhile: route it again (to a node the user moved to) or queue it
        return self.send_to_user(ev.dev_id, ev.user_id, ev.event, ev.message, ev.time)

    def _remote_open(self, node: str, ev: SessionOpened, now: int) -> list[Effect]:
        sessions = self._remote.setdefault(node, {})
        known = sessions.get(ev.conn_id)
        if known is not None and (known.dev_id, known.user_id) == (ev.dev_id, ev.user_id):
            # seen already (a node's snapshot and its events overlap): only the channels may differ
            return self._remote_subscribe(known, ev.channels, now) if known.channels != ev.channels else []
        effects = self._remote_close(node, ev.conn_id, now, persist=False) if known is not None else []
        rs = RemoteSession.from_event(node, ev)
        sessions[ev.conn_id] = rs
        if rs.user_id > 0:
            key = (rs.dev_id, rs.user_id)
            first = not self._users.get(key) and not self._remote_users.get(key)
            per_node = self._remote_users.setdefault(key, {})
            per_node[node] = per_node.get(node, 0) + 1
            if first:
                effects.extend(self._status(rs.dev_id, rs.user_id, "online"))
        if ev.channels:
            effects.extend(self._remote_subscribe(rs, ev.channels, now))
        return effects

    def _remote_subscribe(self, rs: RemoteSession, channels: tuple[str, ...], now: int) -> list[Effect]:
        effects = self._leave(rs, rs.channels, self._remote_channels, rs.key, now)
        effects += self._join(rs, channels, self._remote_channels, rs.key, now)
        rs.channels = tuple(channels)
        return effects

    def _remote_close(self, node: str, conn_id: int, now: int, *, persist: bool) -> list[Effect]:
        """Forget a remote session. ``persist``: its node cannot store the last-seen time itself."""
        rs = self._remote.get(node, {}).pop(conn_id, None)
        if rs is None:
            return []
        effects = self._leave(rs, rs.channels, self._remote_channels, rs.key, now)
        if rs.user_id <= 0:
            return effects
        key = (rs.dev_id, rs.user_id)
        per_node = self._remote_users.get(key, {})
        left = per_node.get(rs.node, 0) - 1
        if left > 0:
            per_node[rs.node] = left
        else:
            per_node.pop(rs.node, None)
        if per_node:
            return effects
        self._remote_users.pop(key, None)
        if self._users.get(key):
            return effects
        if persist:
            effects.append(self._persist(SetLastSeen(rs.dev_id, rs.user_id, now)))
        effects.extend(self._status(rs.dev_id, rs.user_id, "offline"))
        return effects

    # -------------------------------------------------------------- statistics

    def user_time(self, dev_id: int, user_id: int) -> int:
        """users_time: 0 while online, the last-seen unix time after, -1 when unknown."""
        if (dev_id, user_id) in self._users or (dev_id, user_id) in self._remote_users:
            return 0
        return self._last_seen.get((dev_id, user_id), -1)

    def known_users(self, dev_id: int) -> list[int]:
        """Every user id with a users_time value (online now or seen before)."""
        ids = {u for (d, u) in self._last_seen if d == dev_id}
        ids.update(u for (d, u) in self._users if d == dev_id)
        ids.update(u for (d, u) in self._remote_users if d == dev_id)
        return sorted(ids)

    def channel_count(self, dev_id: int, channel: str) -> int:
        """Subscribers of a channel on every node."""
        return len(self._channels.get((dev_id, channel), ())) + len(self._remote_channels.get((dev_id, channel), ()))

    def channel_members(self, dev_id: int, channel: str) -> list[Subscriber]:
        """Sessions subscribed to a channel on every node (remote ones as ``RemoteSession``)."""
        members: list[Subscriber] = list(self._channels.get((dev_id, channel), {}).values())
        members.extend(self._remote_channels.get((dev_id, channel), {}).values())
        return members

    def channels(self, dev_id: int) -> list[str]:
        """Channels of a dev with at least one subscriber on some node."""
        names = dict.fromkeys(c for (d, c) in self._channels if d == dev_id)
        names.update(dict.fromkeys(c for (d, c) in self._remote_channels if d == dev_id))
        return list(names)

    def sessions_by_transport(self) -> dict[str, int]:
        """Live sessions counted by their ``transport`` attribute (websocket, longpoll; "other" if none)."""
        counts: dict[str, int] = {}
        for sub in self._sessions.values():
            transport = getattr(sub, "transport", "other")
            counts[transport] = counts.get(transport, 0) + 1
        return counts

    def busiest_channels(self, count: int) -> list[tuple[int, str, int]]:
        """The ``count`` channels with the most subscribers, across dev_ids: (dev_id, channel, subscribers)."""
        top = heapq.nlargest(count, self._channels.items(), key=lambda item: len(item[1]))
        return [(dev, channel, len(subs)) for (dev, channel), subs in top]

    def user_sessions(self, dev_id: int, user_id: int) -> list[Subscriber]:
        return list(self._users.get((dev_id, user_id), {}).values())

    def sessions(self, dev_id: int | None = None) -> int:
        if dev_id is None:
            return len(self._sessions)
        return sum(1 for s in self._sessions.values() if s.dev_id == dev_id)

    def statistics(self) -> HubStatistics:
        return HubStatistics(
            sessions=len(self._sessions),
            authorized_users=len(self._users),
            channels=len(self._channels),
            subscriptions=sum(len(s) for s in self._channels.values()),
            queued_messages=sum(len(q) for q in self._queues.values()),
            published=self._published,
            delivered_to_users=self._delivered_to_users,
            queued=self._queued,
        )
