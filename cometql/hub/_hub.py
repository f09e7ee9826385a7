"""The hub: the state of one CometQL node, as a plain object that returns effects.

``Hub`` owns presence: this node's sessions, its channel index (who gets a
channel's messages), its user index (who gets a user's messages) and each
session's channel list. It holds the two other parts of the state (see the
package docstring), ``state`` (``DurableState``) and the remote side
(``RemoteSessions``), and is the one facade over all three. Rules:

1. No I/O, no trio, no clock, no randomness. Callers pass ``now`` (unix
   seconds) and, once, the sources of ids and secrets; every call returns a list of
   effects (``Deliver``, ``Persist``, ``Disconnect``, ``Broadcast``) to apply in order.
2. Every piece of state is scoped by ``dev_id``; keys are ``(dev_id, x)``.
3. A durable change is a record in a ``Persist``, applied to ``state`` once stored (``settle``, in
   commit order; a refused one leaves no trace); ``restore`` and ``remote_records`` use the same table.
4. One fan-out: a channel message reaches this node's subscribers through
   ``publish``, whether it was published here (SQL, a browser) or on another node.
5. A user is online while any node holds one of their sessions (online and offline frames, last-seen
   time, the per-user session limit). Personal messages are ``personal``'s (``_personal``).

Subscribers are opaque handles (see ``_subscriber``): the hub indexes them and
decides who gets which frame. A hub given a ``node_id`` is one node of a
cluster (see ``events``): it also returns ``Broadcast`` effects for the others.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import assert_never, cast

from . import _frames
from . import records as r
from ._auth import hash_matches, jwt_secret, jwt_user_id
from ._effects import Broadcast, Deliver, Disconnect, Effect, Persist
from ._inflight import InFlight
from ._personal import DEFAULT_MAX_BYTES, DEFAULT_MAX_COUNT, Personal
from ._remote import ChannelsChanged, RemoteSessions, Transition, UserAppeared, UserGone, opened_event
from ._state import MAX_HISTORY, DurableState
from ._subscriber import Subscriber
from .events import Change, ClusterEvent, Kick, Published, SessionClosed, SessionOpened, SessionSubscribed, UserMessage
from .records import HistoryEntry, Record, is_record

__all__ = ["Hub", "HubStatistics", "MAX_USER_CONNECTIONS"]

MAX_USER_CONNECTIONS = 16


@dataclass(frozen=True, slots=True)
class HubStatistics:
    """The hub's share of the statistics snapshot (``observe.Statistics``)."""

    sessions: int
    authorized_users: int
    channels: int
    subscriptions: int
    queued_messages: int
    published: int
    queued: int


class Hub:
    """Channels, subscribers, presence, queues, history and auth for every dev_id.

    The caller passes what the hub may not make itself: ``new_id``, unique ids for
    history entries and queued messages, and ``new_secret``, the unguessable hash (at
    most 32 characters) stored at a user's first JWT login.
    """

    def __init__(
        self,
        *,
        password: str,
        new_id: Callable[[], str],
        new_secret: Callable[[], str],
        send_user_online_events: bool = True,
        send_user_offline_events: bool = True,
        max_subscriptions: int = 32,
        node_id: str | None = None,
        max_queue_messages: int = DEFAULT_MAX_COUNT,
        max_queue_bytes: int = DEFAULT_MAX_BYTES,
        queue_ttl: int = 0,
    ) -> None:
        self.password = password
        #: Channels one browser session may subscribe to (CppComet: 32); read by the ``subscription`` command.
        self.max_subscriptions = max_subscriptions
        self.send_user_online_events = send_user_online_events
        self.send_user_offline_events = send_user_offline_events
        self._new_id = new_id
        self._new_secret = new_secret
        #: This node's id in a cluster; None for a single node (no Broadcast effects at all).
        self.node_id = node_id
        #: The durable state. Anyone may read it; only the hub changes it (by applying records).
        self.state = DurableState()
        self._remote = RemoteSessions()  # other nodes' sessions (empty without a cluster)
        # presence: this node's sessions
        self._sessions: dict[int, Subscriber] = {}
        self._channels: dict[tuple[int, str], dict[int, Subscriber]] = {}
        self._sub_channels: dict[int, tuple[str, ...]] = {}  # tuples: idle sessions are many
        self._users: dict[tuple[int, int], dict[int, Subscriber]] = {}
        self._in_flight = InFlight()  # what records not stored yet have reserved
        #: Personal messages: bounds, each local user's feed of their queue, acks, pages read (``_personal``).
        self.personal = Personal(self.state, self._in_flight, self._persist, self._user_sessions, new_id,
                                 max_count=max_queue_messages, max_bytes=max_queue_bytes, ttl=queue_ttl,
                                 always_load=node_id is not None)
        # counters
        self._published = 0
        self._queued = 0

    def restore(self, records: Iterable[Record], queue_sizes: Iterable[tuple[int, int, int, int]] = ()) -> None:
        """Rebuild durable state from records a store has kept, and the size of each user's queue
        (dev_id, user_id, messages, bytes: the messages stay in the store). No effects."""
        self.state.restore(records)
        self.state.restore_queues(queue_sizes)

    def _user_sessions(self, dev_id: int, user_id: int) -> tuple[Subscriber, ...]:
        conns = self._users.get((dev_id, user_id))
        return tuple(conns.values()) if conns else ()

    def _persist(self, rec: Record) -> Persist:
        self._in_flight.hold(rec)
        return Persist((rec,))  # applied to ``state`` by ``settle``, once the store has it

    def settle(self, records: Iterable[Record], stored: bool) -> list[Effect]:
        """A statement's records are stored (applied in commit order, see ``_inflight``) or refused (no trace)."""
        effects: list[Effect] = []
        for rec in records:
            self._in_flight.release(rec)
            if stored:
                self.state.apply(rec)
            effects.extend(self._queue_changed(rec, stored))
        return effects

    def _queue_changed(self, rec: Record, stored: bool = True) -> list[Effect]:
        """A stored message goes to its user's sessions here; a deletion, stored or refused (the
        messages stay queued), frees their window."""
        if type(rec) is r.QueueMessage:
            self.personal.settled(rec, stored)
            return self.personal.stored(rec) if stored else []
        return self.personal.deleted(rec) if type(rec) is r.DeleteQueued else []

    # --------------------------------------------------------------- publishing

    def publish(self, dev_id: int, channel: str, event: str, message: str, now: int, *, user_id: int | None = None,
                skip: int | None = None, origin: str | None = None) -> list[Effect]:
        """Fan a channel message out to this node's subscribers (all but the session ``skip``), with
        one ``Deliver`` whose frame is encoded once: the one fan-out. Published here (``origin``
        None), it is also counted, kept in history if configured and broadcast to the other nodes;
        published on node ``origin`` (a ``Published`` event), that node has done all three."""
        effects: list[Effect] = []
        if origin is None:
            self._published += 1
            keep = self.state.history_keep(dev_id, channel)
            if keep:
                effects.append(self._keep(dev_id, channel, keep, event, message, now, user_id or 0))
        subs = self._channels.get((dev_id, channel))
        if subs:
            targets = tuple(subs.values()) if skip is None else tuple(s for cid, s in subs.items() if cid != skip)
            if targets:
                effects.append(Deliver(targets, _frames.pipe_frame(channel, event, message, now, user_id)))
        if self.node_id is not None and origin is None:
            effects.append(Broadcast((Published(dev_id, channel, event, message, now, user_id),)))
        return effects

    def web_publish(
        self, sender: Subscriber, channel: str, event: str, message: str, user_id: int, now: int
    ) -> tuple[int, list[Effect]]:
        """A browser's ``web_pipe2``: every *other* subscriber of the channel gets it, stamped
        with the sender's user id. Returns how many sessions it was delivered to."""
        effects = self.publish(sender.dev_id, channel, event, message, now, user_id=user_id, skip=sender.conn_id)
        here = sum(len(e.targets) for e in effects if isinstance(e, Deliver))
        return here + len(self._remote.channels.get((sender.dev_id, channel), ())), effects

    def _keep(self, dev_id: int, channel: str, keep: int, event: str, message: str, now: int, user_id: int) -> Persist:
        entry = HistoryEntry(self._new_id(), now, event or "undefined", message, user_id)
        return self._persist(r.AppendHistory(dev_id, channel, entry, keep))

    def send_to_user(self, dev_id: int, user_id: int, event: str, message: str, now: int, *,
                     key: str | None = None) -> list[Effect]:
        """Queue a personal message durably; once stored it goes to the user's sessions on every node
        (``_personal``). ``key``: the backend's idempotency key, also the message id. Raises
        ``QueueFull`` at the user's queue bound."""
        remote = bool(self._remote.users.get((dev_id, user_id)))
        offline = not remote and (dev_id, user_id) not in self._users
        stored, effects = self.personal.send(dev_id, user_id, event, message, now, key=key, remote=remote)
        if stored and offline:
            self._queued += 1
        return effects


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
        conns = self._users.get(key, {})
        remote = sum(self._remote.users.get(key, {}).values())
        if len(conns) + remote >= MAX_USER_CONNECTIONS:  # refused: leaves no empty entry behind
            return [*effects, Disconnect((sub,), "too many sessions for this user")]
        first = not conns and not remote
        self._users.setdefault(key, conns)[sub.conn_id] = sub
        effects.extend(self.personal.opened(sub))
        if first:
            effects.extend(self._status(sub.dev_id, sub.user_id, "online"))
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
        left = self._sub_channels.pop(sub.conn_id, ())
        if left:
            self._unindex(sub, left)
            effects.extend(self._tracked(sub, left, (), now))
        if sub.user_id <= 0:
            return effects
        key = (sub.dev_id, sub.user_id)
        conns = self._users.get(key)
        if conns is None or conns.pop(sub.conn_id, None) is None:
            return effects  # not linked to its user
        if conns:  # not the user's last session here
            return effects + self.personal.closed(sub)
        del self._users[key]
        effects += self.personal.closed(sub)
        if not self._remote.users.get(key):
            effects.append(self._persist(r.SetLastSeen(sub.dev_id, sub.user_id, now)))
            effects.extend(self._status(sub.dev_id, sub.user_id, "offline"))
        return effects

    def subscribe(self, sub: Subscriber, channels: Iterable[str], now: int) -> list[Effect]:
        """Replace a session's channel set (CppComet's ``subscription`` semantics).

        ``private_*`` channels are skipped for anonymous sessions. Members of a
        ``track_*`` channel are told when someone leaves or joins it; a channel
        kept across the replacement counts as leave + join, as in CppComet.
        """
        wanted = tuple(c for c in dict.fromkeys(channels) if sub.user_id > 0 or not c.startswith("private_"))
        left = self._sub_channels.get(sub.conn_id, ())
        self._unindex(sub, left)
        effects = self._tracked(sub, left, wanted, now)
        for channel in wanted:
            self._channels.setdefault((sub.dev_id, channel), {})[sub.conn_id] = sub
        self._sub_channels[sub.conn_id] = wanted
        if self.node_id is not None:
            effects.append(Broadcast((SessionSubscribed(sub.conn_id, wanted),)))
        return effects

    def _unindex(self, sub: Subscriber, channels: Iterable[str]) -> None:
        index = self._channels
        for channel in channels:
            ckey = (sub.dev_id, channel)
            members = index.get(ckey)
            if members is not None:
                members.pop(sub.conn_id, None)
                if not members:
                    del index[ckey]

    def _tracked(self, sub: Subscriber, left: Iterable[str], joined: Iterable[str], now: int) -> list[Effect]:
        """Tell this node's members of ``track_*`` channels that ``sub`` (local or remote, in none of
        these channels' local index at this point) left ``left`` and joined ``joined``."""
        effects: list[Effect] = []
        for event, channels in (("unsubscription", left), ("subscription", joined)):
            for channel in channels:
                members = self._channels.get((sub.dev_id, channel)) if channel.startswith("track_") else None
                if members:
                    frame = _frames.track_frame(channel, event, sub.user_id, sub.info.uuid, now)
                    effects.append(Deliver(tuple(members.values()), frame))
        return effects

    # ---------------------------------------------------------------------- auth

    def authorize(self, dev_id: int, user_id: int, key: str, now: int) -> tuple[bool, list[Effect]]:
        """Check a browser login (hash or JWT). A first JWT login stores an unguessable hash."""
        if user_id <= 0:
            return False, []
        stored = self.state.auth_hash(dev_id, user_id)
        if hash_matches(stored, key):
            return True, []
        if self.state.is_revoked(dev_id, key) or jwt_user_id(key, jwt_secret(self.password, dev_id), now) != user_id:
            return False, []
        return True, [self._persist(r.SetAuth(dev_id, user_id, self._new_secret()))] if stored is None else []

    def set_auth(self, dev_id: int, user_id: int, hash_: str) -> list[Effect]:
        return [self._persist(r.SetAuth(dev_id, user_id, hash_))]

    def delete_auth(self, dev_id: int, user_ids: Iterable[int]) -> list[Effect]:
        """Remove hashes and close every live session of those users, on every node."""
        user_ids = list(user_ids)
        effects: list[Effect] = []
        for uid in user_ids:
            if self.state.auth_hash(dev_id, uid) is not None or self.node_id is not None:  # another node may set it
                effects.append(self._persist(r.DeleteAuth(dev_id, uid)))
            conns = self._users.get((dev_id, uid))
            if conns:
                effects.append(Disconnect(tuple(conns.values()), "authorization removed"))
        kicked = tuple(u for u in user_ids if self._remote.users.get((dev_id, u)))
        if kicked:
            effects.append(Broadcast((Kick(dev_id, kicked, "authorization removed"),)))
        return effects

    def revoke_token(self, dev_id: int, token: str, now: int) -> list[Effect]:
        """Store a revoked token; if it is a valid JWT of this dev, log its user out."""
        effects: list[Effect] = [self._persist(r.AddRevokedToken(dev_id, token))]
        uid = jwt_user_id(token, jwt_secret(self.password, dev_id), now)
        if uid is not None:
            effects.extend(self.delete_auth(dev_id, [uid]))
        return effects

    def unrevoke_tokens(self, dev_id: int, tokens: Iterable[str]) -> list[Effect]:
        return [self._persist(r.DeleteRevokedToken(dev_id, t)) for t in tokens
                if self.state.is_revoked(dev_id, t) or self.node_id is not None]

    # ------------------------------------------- user data, settings, history, queues

    def set_user_data(self, dev_id: int, user_id: int, data: str) -> list[Effect]:
        return [self._persist(r.SetUserData(dev_id, user_id, data))]

    def delete_user_data(self, dev_id: int, user_ids: Iterable[int]) -> list[Effect]:
        return [self._persist(r.DeleteUserData(dev_id, u)) for u in user_ids
                if self.state.user_data(dev_id, u) is not None or self.node_id is not None]

    def set_pipe_settings(self, dev_id: int, channel: str, length: int) -> list[Effect]:
        length = max(0, min(MAX_HISTORY, length))
        return [self._persist(r.SetPipeSettings(dev_id, channel, length))]

    def delete_pipe_settings(self, dev_id: int, channels: Iterable[str]) -> list[Effect]:
        return [self._persist(r.DeletePipeSettings(dev_id, c)) for c in channels]

    def clear_history(self, dev_id: int, channels: Iterable[str]) -> list[Effect]:
        return [self._persist(r.ClearHistory(dev_id, c)) for c in channels if self.state.has_history(dev_id, c)]

    def delete_history_ids(self, dev_id: int, ids: Iterable[str]) -> list[Effect]:
        return [self._persist(r.DeleteHistoryIds(dev_id, tuple(ids)))]

    def delete_queued(self, dev_id: int, user_ids: Iterable[int]) -> list[Effect]:
        return [self._persist(r.DeleteQueued(dev_id, u, None)) for u in user_ids
                if self.state.has_queue(dev_id, u) or self.node_id is not None]

    # ------------------------------------------------------------------ cluster

    def remote_changes(self, node: str, changes: Iterable[Change], now: int) -> list[Effect]:
        """Apply one bus entry of another node value by value, records and events interleaved as it produced
        them (stream order). The follower and the in-process cluster tests apply entries through here."""
        effects: list[Effect] = []
        for change in changes:
            if is_record(change):
                effects += self.remote_records((change,))
            else:
                effects += self.remote_events(node, (cast(ClusterEvent, change),), now)
        return effects

    def remote_events(self, node: str, events: Iterable[ClusterEvent], now: int) -> list[Effect]:
        """Apply another node's events: update the view of its sessions, deliver to ours."""
        remote = self._remote
        effects: list[Effect] = []
        for ev in events:
            match ev:
                case Published():
                    effects.extend(self.publish(ev.dev_id, ev.channel, ev.event, ev.message, ev.time,
                                                user_id=ev.user_id, origin=node))
                case UserMessage():
                    conns = self._users.get((ev.dev_id, ev.user_id))
                    if conns and self.node_id in ev.nodes:
                        effects.append(Deliver(tuple(conns.values()), _frames.user_frame(ev.event, ev.message)))
                    elif not conns and remote.reroutes(ev, self.node_id):
                        effects.extend(self.send_to_user(ev.dev_id, ev.user_id, ev.event, ev.message, ev.time))
                case SessionOpened():
                    effects.extend(self._remote_changed(remote.open(node, ev), now))
                case SessionSubscribed():
                    effects.extend(self._remote_changed(remote.subscribe(node, ev.conn_id, ev.channels), now))
                case SessionClosed():
                    effects.extend(self._remote_changed(remote.close(node, ev.conn_id), now))
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
            if self.state.merge(rec):
                effects.extend(self._queue_changed(rec))
        return effects

    def sync_node(self, node: str, sessions: Iterable[SessionOpened], now: int) -> list[Effect]:
        """Make the view of ``node`` equal to its full session list (start-up, after an outage)."""
        return self._remote_changed(self._remote.sync(node, sessions), now)

    def drop_node(self, node: str, now: int) -> list[Effect]:
        """A node is gone (stopped or silent too long): its sessions leave, and the
        last-seen time of users who are now offline everywhere is stored."""
        return self._remote_changed(self._remote.drop(node), now, node_gone=True)

    def remote_nodes(self) -> dict[str, int]:
        """Other nodes with live sessions, and how many each holds."""
        return self._remote.nodes()

    def _remote_changed(self, changes: list[Transition], now: int, *, node_gone: bool = False) -> list[Effect]:
        """The effects of changes in the view of other nodes, decided with this node's sessions.
        ``node_gone``: the sessions' node cannot store last-seen times itself."""
        effects: list[Effect] = []
        for change in changes:
            match change:
                case ChannelsChanged():
                    effects.extend(self._tracked(change.session, change.left, change.joined, now))
                case UserAppeared():
                    if not self._users.get((change.dev_id, change.user_id)):
                        effects.extend(self._status(change.dev_id, change.user_id, "online"))
                case UserGone():
                    if not self._users.get((change.dev_id, change.user_id)):
                        if node_gone:
                            effects.append(self._persist(r.SetLastSeen(change.dev_id, change.user_id, now)))
                        effects.extend(self._status(change.dev_id, change.user_id, "offline"))
                case _:
                    assert_never(change)
        return effects

    # ------------------------------------------------------------------ queries

    def user_time(self, dev_id: int, user_id: int) -> int:
        """users_time: 0 while online, the last-seen unix time after, -1 when unknown."""
        key = (dev_id, user_id)  # a user whose last-seen time is not stored yet is still online
        if key in self._users or key in self._remote.users or key in self._in_flight.leaving:
            return 0
        seen = self.state.last_seen(dev_id, user_id)
        return -1 if seen is None else seen

    def known_users(self, dev_id: int) -> list[int]:
        """Every user id with a users_time value (online now or seen before)."""
        ids = set(self.state.seen_users(dev_id))
        ids.update(u for ix in (self._users, self._remote.users, self._in_flight.leaving) for d, u in ix if d == dev_id)
        return sorted(ids)

    def channel_count(self, dev_id: int, channel: str) -> int:
        """Subscribers of a channel on every node."""
        return len(self._channels.get((dev_id, channel), ())) + len(self._remote.channels.get((dev_id, channel), ()))

    def channel_members(self, dev_id: int, channel: str) -> list[Subscriber]:
        """Sessions subscribed to a channel on every node (remote ones as ``RemoteSession``)."""
        members: list[Subscriber] = list(self._channels.get((dev_id, channel), {}).values())
        members.extend(self._remote.channels.get((dev_id, channel), {}).values())
        return members

    def channels(self, dev_id: int) -> list[str]:
        """Channels of a dev with at least one subscriber on some node."""
        names = dict.fromkeys(c for (d, c) in self._channels if d == dev_id)
        names.update(dict.fromkeys(c for (d, c) in self._remote.channels if d == dev_id))
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

    def sessions(self, dev_id: int) -> int:
        return sum(1 for s in self._sessions.values() if s.dev_id == dev_id)

    def statistics(self) -> HubStatistics:
        return HubStatistics(
            sessions=len(self._sessions),
            authorized_users=len(self._users),
            channels=len(self._channels),
            subscriptions=sum(len(s) for s in self._channels.values()),
            queued_messages=self.state.queued_messages(),
            published=self._published,
            queued=self._queued,
        )
