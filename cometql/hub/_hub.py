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
"""

from __future__ import annotations

import heapq
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import _frames
from ._auth import hash_matches, jwt_secret, jwt_user_id
from ._effects import Deliver, Disconnect, Effect, Persist
from ._records import (
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
from ._subscriber import Subscriber

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
    ) -> None:
        self.password = password
        #: Channels one browser session may subscribe to (CppComet: 32); read by the ``subscription`` command.
        self.max_subscriptions = max_subscriptions
        self.send_user_online_events = send_user_online_events
        self.send_user_offline_events = send_user_offline_events
        self._new_id = new_id
        # live state
        self._sessions: dict[int, Subscriber] = {}
        self._channels: dict[ChannelKey, dict[int, Subscriber]] = {}
        self._sub_channels: dict[int, tuple[str, ...]] = {}  # tuples: idle sessions are many
        self._users: dict[Key, dict[int, Subscriber]] = {}
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
        t = type(rec)
        if t is SetAuth:
            self._auth[(rec.dev_id, rec.user_id)] = rec.hash
        elif t is DeleteAuth:
            self._auth.pop((rec.dev_id, rec.user_id), None)
        elif t is SetUserData:
            self._user_data[(rec.dev_id, rec.user_id)] = rec.data
        elif t is DeleteUserData:
            self._user_data.pop((rec.dev_id, rec.user_id), None)
        elif t is AddRevokedToken:
            self._revoked.setdefault(rec.dev_id, {})[rec.token] = None
        elif t is DeleteRevokedToken:
            self._revoked.get(rec.dev_id, {}).pop(rec.token, None)
        elif t is SetPipeSettings:
            self._settings[(rec.dev_id, rec.channel)] = rec.length
        elif t is DeletePipeSettings:
            self._settings.pop((rec.dev_id, rec.channel), None)
            self._history.pop((rec.dev_id, rec.channel), None)
        elif t is AppendHistory:
            log = self._history.setdefault((rec.dev_id, rec.channel), deque())
            log.append(rec.entry)
            while rec.keep and len(log) > rec.keep:
                log.popleft()
        elif t is ClearHistory:
            self._history.pop((rec.dev_id, rec.channel), None)
        elif t is DeleteHistoryIds:
            wanted = set(rec.ids)
            for (dev, channel), log in list(self._history.items()):
                if dev == rec.dev_id and any(e.id in wanted for e in log):
                    kept = deque(e for e in log if e.id not in wanted)
                    if kept:
                        self._history[(dev, channel)] = kept
                    else:
                        del self._history[(dev, channel)]
        elif t is QueueMessage:
            self._queues.setdefault((rec.dev_id, rec.user_id), {})[rec.entry.id] = rec.entry
        elif t is DeleteQueued:
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
        elif t is SetLastSeen:
            self._last_seen[(rec.dev_id, rec.user_id)] = rec.time
        else:  # pragma: no cover - the Record union is closed
            raise TypeError(f"not a hub record: {rec!r}")

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
        return len(targets), effects

    def _keep_history(self, dev_id: int, channel: str, event: str, message: str, now: int, user_id: int) -> list[Effect]:
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
        if conns:
            self._delivered_to_users += 1
            return [Deliver(tuple(conns.values()), _frames.user_frame(event, message))]
        self._queued += 1
        entry = QueuedMessage(self._new_id(), now, event, message)
        return [self._persist(QueueMessage(dev_id, user_id, entry))]

    # ------------------------------------------------------------------ sessions

    def connect(self, sub: Subscriber, now: int) -> list[Effect]:
        """Register a session; an authorized one is linked to its user and gets its queue."""
        self._sessions[sub.conn_id] = sub
        self._sub_channels.setdefault(sub.conn_id, ())
        if sub.user_id <= 0:
            return []
        key = (sub.dev_id, sub.user_id)
        conns = self._users.setdefault(key, {})
        if len(conns) >= MAX_USER_CONNECTIONS:
            return [Disconnect((sub,), "too many sessions for this user")]
        first = not conns
        conns[sub.conn_id] = sub
        effects: list[Effect] = []
        queue = self._queues.get(key)
        if queue:
            entries = list(queue.values())
            for entry in entries:
                effects.append(Deliver((sub,), _frames.queued_user_frame(entry.event, entry.message, entry.time)))
            effects.append(self._persist(DeleteQueued(sub.dev_id, sub.user_id, tuple(e.id for e in entries))))
        if first and self.send_user_online_events:
            subs = self._channels.get((sub.dev_id, f"user_status_{sub.user_id}"))
            if subs:  # status_frame: no message_send_time, as CppComet (browser-wire.md §3.6)
                effects.append(Deliver(tuple(subs.values()), _frames.status_frame(sub.user_id, "online")))
        return effects

    def disconnect(self, sub: Subscriber, now: int) -> list[Effect]:
        """Forget a session; the user's last-seen time is stored when its last session goes."""
        if self._sessions.pop(sub.conn_id, None) is None:
            return []
        effects: list[Effect] = []
        for channel in self._sub_channels.pop(sub.conn_id, ()):
            self._unindex(sub, channel)
            if channel.startswith("track_"):
                effects.extend(self._track(sub, channel, "unsubscription", now))
        if sub.user_id <= 0:
            return effects
        key = (sub.dev_id, sub.user_id)
        conns = self._users.get(key)
        if conns is None or conns.pop(sub.conn_id, None) is None:
            return effects
        if conns:
            return effects
        del self._users[key]
        effects.append(self._persist(SetLastSeen(sub.dev_id, sub.user_id, now)))
        if self.send_user_offline_events:
            subs = self._channels.get((sub.dev_id, f"user_status_{sub.user_id}"))
            if subs:
                effects.append(Deliver(tuple(subs.values()), _frames.status_frame(sub.user_id, "offline")))
        return effects

    def subscribe(self, sub: Subscriber, channels: Iterable[str], now: int) -> list[Effect]:
        """Replace a session's channel set (CppComet's ``subscription`` semantics).

        ``private_*`` channels are skipped for anonymous sessions. Members of a
        ``track_*`` channel are told when someone leaves or joins it; a channel
        kept across the replacement counts as leave + join, as in CppComet.
        """
        wanted = [c for c in dict.fromkeys(channels) if sub.user_id > 0 or not c.startswith("private_")]
        effects: list[Effect] = []
        for channel in self._sub_channels.get(sub.conn_id, ()):
            self._unindex(sub, channel)
            if channel.startswith("track_"):
                effects.extend(self._track(sub, channel, "unsubscription", now))
        for channel in wanted:
            if channel.startswith("track_"):
                effects.extend(self._track(sub, channel, "subscription", now))
            self._channels.setdefault((sub.dev_id, channel), {})[sub.conn_id] = sub
        self._sub_channels[sub.conn_id] = tuple(wanted)
        return effects

    def subscriptions(self, conn_id: int) -> list[str]:
        return sorted(self._sub_channels.get(conn_id, ()))

    def _track(self, sub: Subscriber, channel: str, event: str, now: int) -> list[Effect]:
        members = self._channels.get((sub.dev_id, channel))
        if not members:
            return []
        frame = _frames.track_frame(channel, event, sub.user_id, sub.info.uuid, now)
        return [Deliver(tuple(members.values()), frame)]

    def _unindex(self, sub: Subscriber, channel: str) -> None:
        key = (sub.dev_id, channel)
        subs = self._channels.get(key)
        if subs is not None:
            subs.pop(sub.conn_id, None)
            if not subs:
                del self._channels[key]

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
        """Remove hashes and close every live session of those users."""
        effects: list[Effect] = []
        for uid in user_ids:
            if (dev_id, uid) in self._auth:
                effects.append(self._persist(DeleteAuth(dev_id, uid)))
            conns = self._users.get((dev_id, uid))
            if conns:
                effects.append(Disconnect(tuple(conns.values()), "authorization removed"))
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
        return [self._persist(DeleteRevokedToken(dev_id, t)) for t in tokens if t in known]

    def revoked_tokens(self, dev_id: int) -> list[str]:
        return list(self._revoked.get(dev_id, {}))

    def is_revoked(self, dev_id: int, token: str) -> bool:
        return token in self._revoked.get(dev_id, {})

    # ---------------------------------------------------------------- user data

    def set_user_data(self, dev_id: int, user_id: int, data: str) -> list[Effect]:
        return [self._persist(SetUserData(dev_id, user_id, data))]

    def delete_user_data(self, dev_id: int, user_ids: Iterable[int]) -> list[Effect]:
        return [self._persist(DeleteUserData(dev_id, u)) for u in user_ids if (dev_id, u) in self._user_data]

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
        return [self._persist(DeleteQueued(dev_id, u, None)) for u in user_ids if (dev_id, u) in self._queues]

    # -------------------------------------------------------------- statistics

    def user_time(self, dev_id: int, user_id: int) -> int:
        """users_time: 0 while online, the last-seen unix time after, -1 when unknown."""
        if (dev_id, user_id) in self._users:
            return 0
        return self._last_seen.get((dev_id, user_id), -1)

    def known_users(self, dev_id: int) -> list[int]:
        """Every user id with a users_time value (online now or seen before)."""
        ids = {u for (d, u) in self._last_seen if d == dev_id}
        ids.update(u for (d, u) in self._users if d == dev_id)
        return sorted(ids)

    def channel_count(self, dev_id: int, channel: str) -> int:
        return len(self._channels.get((dev_id, channel), ()))

    def channel_members(self, dev_id: int, channel: str) -> list[Subscriber]:
        return list(self._channels.get((dev_id, channel), {}).values())

    def channels(self, dev_id: int) -> list[str]:
        """Channels of a dev with at least one subscriber."""
        return [c for (d, c) in self._channels if d == dev_id]

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
