"""The hub: the state of one CometQL node, as a plain object that returns effects.

``Hub`` is the one facade over the state's parts (see the package docstring):
``presence`` (``Presence``: this node's session, channel and user indexes, and
the view of the other nodes' sessions, ``RemoteSessions``), ``state``
(``DurableState``) and ``personal`` (users' queues). It decides what a change
means (frames, records, broadcasts); the parts only keep their indexes. Rules:

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

Subscribers are opaque handles (see ``_subscriber``): ``presence`` indexes them and
the hub decides who gets which frame. A hub given a ``node_id`` is one node of a
cluster (see ``events``): it also returns ``Broadcast`` effects for the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import assert_never, cast

from . import _frames, _traffic
from . import records as r
from ._auth import hash_matches, jwt_secret, jwt_user_id
from ._effects import Broadcast, Deliver, Disconnect, Effect, Persist
from ._inflight import InFlight
from ._personal import DEFAULT_MAX_BYTES, DEFAULT_MAX_COUNT, Personal
from ._presence import Presence
from ._queries import HubQueries, HubStatistics
from ._remote import ChannelsChanged, Transition, UserAppeared, UserGone, opened_event, tracks
from ._state import MAX_HISTORY, DurableState, Position
from ._streams import Echo, position_frames
from ._subscriber import Subscriber
from ._subscriber import all_but as _targets
from .events import Change, ClusterEvent, Kick, Published, SessionClosed, SessionOpened, SessionSubscribed, UserMessage
from .records import HistoryEntry, Record, is_record

__all__ = ["Hub", "HubStatistics", "MAX_USER_CONNECTIONS"]

MAX_USER_CONNECTIONS = 16


class Hub(HubQueries):
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
        user_data_access: str = "anyone",
        count_traffic: bool = False,
        max_queue_messages: int = DEFAULT_MAX_COUNT,
        max_queue_bytes: int = DEFAULT_MAX_BYTES,
        queue_ttl: int = 0,
    ) -> None:
        self.password = password
        #: Channels one browser session may subscribe to (CppComet: 32); read by the ``subscription`` command.
        self.max_subscriptions = max_subscriptions
        #: Who may read users_data with the browser's ``user_data`` command: "anyone" (CppComet, anonymous
        #: sessions too), "users" (logged-in sessions) or "self" (a user reads only their own).
        self.user_data_access = user_data_access
        self.send_user_online_events = send_user_online_events
        self.send_user_offline_events = send_user_offline_events
        self._new_id = new_id
        self._new_secret = new_secret
        #: This node's id in a cluster; None for a single node (no Broadcast effects at all).
        self.node_id = node_id
        #: The durable state. Anyone may read it; only the hub changes it (by applying records).
        self.state = DurableState()
        #: Who is online where: this node's sessions and the other nodes'. Anyone may read it; only the hub changes it.
        self.presence = Presence()
        self._in_flight = InFlight()  # what records not stored yet have reserved
        #: Messages decided here for history, fanned out once stored: entry id -> (skip, user_id of the frame).
        self._awaiting: dict[str, tuple[int | None, int | None]] = {}
        #: The same, stored, until this node reads its bus entry: entry id -> (record as stored, skip, user_id).
        self._echo: dict[str, Echo] = {}
        #: Personal messages: bounds, each local user's feed of their queue, acks, pages read (``_personal``).
        self.personal = Personal(self.state, self._in_flight, self._persist, self.presence.user_sessions, new_id,
                                 max_count=max_queue_messages, max_bytes=max_queue_bytes, ttl=queue_ttl,
                                 always_load=node_id is not None)
        # counters
        self._published = 0
        self._queued = 0
        self.traffic = _traffic.Traffic() if count_traffic else _traffic.NoTraffic()  # stats_history's (sampler)

    def restore(self, records: Iterable[Record], queue_sizes: Iterable[tuple[int, int, int, int]] = ()) -> None:
        """Rebuild durable state from a store's records and queue sizes (dev, user, messages, bytes). No effects."""
        self.state.restore(records)
        self.state.restore_queues(queue_sizes)

    def _persist(self, rec: Record) -> Persist:
        self._in_flight.hold(rec)
        return Persist((rec,))  # applied to ``state`` by ``settle``, once the store has it

    def settle(self, records: Iterable[Record], stored: bool, positions: Sequence[Position] = ()) -> list[Effect]:
        """A statement's records are stored (applied in commit order, see ``_inflight``) or refused (no trace).

        ``positions``: the (epoch, offset) an authority assigned to each ``AppendHistory`` among the
        records, in order (Redis); empty when offsets are counted here. A stored message of a
        channel with history is fanned out from here, with its offset, in commit order."""
        effects: list[Effect] = []
        assigned = iter(positions)
        for rec in records:
            self._in_flight.release(rec)
            fan_out = self._awaiting.pop(rec.entry.id, None) if type(rec) is r.AppendHistory else None
            if not stored:
                effects.extend(self._queue_changed(rec, False))  # a refused deletion frees its window
                continue
            if type(rec) is r.AppendHistory and positions:
                epoch, offset = next(assigned)
                rec = replace(rec, epoch=epoch, entry=replace(rec.entry, offset=offset))
            self.state.apply(rec)
            if fan_out is not None and type(rec) is r.AppendHistory:
                if self.node_id is None:
                    effects.extend(self._fan_out_stored(rec, *fan_out))
                else:  # in a cluster, in the bus's order, as every other node (``own_stored``)
                    self._echo[rec.entry.id] = (rec, *fan_out)
            effects.extend(self._queue_changed(rec))
        return effects

    def own_stored(self, changes: Iterable[Change]) -> list[Effect]:
        """This node's bus entry, read back from the stream: the messages it kept in history are fanned
        out here now, in the stream's order, which is the order of their offsets on every node. The
        entry may be read before the writer has settled it: it carries the offsets already."""
        effects: list[Effect] = []
        for rec in changes:
            if type(rec) is r.AppendHistory and rec.epoch:
                echo = self._echo.pop(rec.entry.id, None)
                fan_out = echo[1:] if echo is not None else self._awaiting.pop(rec.entry.id, None)
                if fan_out is not None:
                    effects.extend(self._fan_out_stored(rec, *fan_out))
        return effects

    def _fan_out_stored(self, rec: r.AppendHistory, skip: int | None, user_id: int | None) -> list[Effect]:
        """The frames of a message now in history: with capabilities, its epoch and offset too."""
        subs = self.presence.channels.get((rec.dev_id, rec.channel))
        targets = _targets(subs, skip)
        self.traffic.count(rec.dev_id, rec.channel, 0, len(targets))
        if not targets:
            return []
        epoch, offset = (rec.epoch, rec.entry.offset) if rec.epoch else \
            self.state.position(rec.dev_id, rec.channel) or ("", 0)
        e = rec.entry
        return [Deliver(targets, _frames.channel_frames(rec.channel, e.event, e.message, e.time, user_id,
                                                         epoch, offset))]

    def _queue_changed(self, rec: Record, stored: bool = True) -> list[Effect]:
        """A stored message goes to its user's sessions here; a deletion, stored or refused, frees their window."""
        if type(rec) is r.QueueMessage:
            self.personal.settled(rec, stored)
            return self.personal.stored(rec) if stored else []
        return self.personal.deleted(rec) if type(rec) is r.DeleteQueued else []

    # --------------------------------------------------------------- publishing

    def publish(self, dev_id: int, channel: str, event: str, message: str, now: int, *, user_id: int | None = None,
                skip: int | None = None, origin: str | None = None,
                position: Position | None = None) -> list[Effect]:
        """Fan a channel message out to this node's subscribers (all but the session ``skip``), with
        one ``Deliver`` whose frame is encoded once: the one fan-out. Published here (``origin``
        None), it is also counted, kept in history if configured and broadcast to the other nodes;
        published on node ``origin`` (a ``Published`` event), that node has done all three, and
        ``position`` is the message's place in the channel's stream if it was kept. A message kept
        here is fanned out once stored (``settle``): its offset exists only then."""
        effects: list[Effect] = []
        kept = False
        if origin is None:
            self._published += 1
            keep = self.state.history_keep(dev_id, channel)
            if keep:  # fanned out once stored, with its offset (``settle``)
                effects.append(self._keep(dev_id, channel, keep, event, message, now, user_id, skip))
                kept = True
        targets = () if kept else _targets(self.presence.channels.get((dev_id, channel)), skip)
        if targets:
            frame: bytes | _frames.Frames
            if position is None:
                frame = _frames.pipe_frame(channel, event, message, now, user_id)
            else:
                frame = _frames.channel_frames(channel, event, message, now, user_id, *position)
            effects.append(Deliver(targets, frame))
        self.traffic.count(dev_id, channel, origin is None, len(targets))  # a kept one's deliveries: at settle
        if self.node_id is not None and origin is None:
            effects.append(Broadcast((Published(dev_id, channel, event, message, now, user_id),)))
        return effects

    def web_publish(
        self, sender: Subscriber, channel: str, event: str, message: str, user_id: int, now: int
    ) -> tuple[int, list[Effect]]:
        """A browser's ``web_pipe2``: every *other* subscriber of the channel gets it, stamped
        with the sender's user id. Returns how many sessions it was delivered to."""
        effects = self.publish(sender.dev_id, channel, event, message, now, user_id=user_id, skip=sender.conn_id)
        presence = self.presence
        subs = presence.channels.get((sender.dev_id, channel)) or {}  # counted, not walked again
        here = len(subs) - (sender.conn_id in subs)
        return here + presence.remote.channels.get((sender.dev_id, channel), 0), effects

    def _keep(self, dev_id: int, channel: str, keep: int, event: str, message: str, now: int,
              user_id: int | None, skip: int | None) -> Persist:
        entry = HistoryEntry(self._new_id(), now, event or "undefined", message, user_id or 0)
        self._awaiting[entry.id] = (skip, user_id)
        return self._persist(r.AppendHistory(dev_id, channel, entry, keep))

    def send_to_user(self, dev_id: int, user_id: int, event: str, message: str, now: int, *,
                     key: str | None = None) -> list[Effect]:
        """Queue a personal message durably; once stored it goes to the user's sessions on every node
        (``_personal``). ``key``: the backend's idempotency key, also the message id. Raises
        ``QueueFull`` at the user's queue bound."""
        remote = self.presence.online_elsewhere(dev_id, user_id)
        offline = not remote and not self.presence.online_here(dev_id, user_id)
        stored, effects = self.personal.send(dev_id, user_id, event, message, now, key=key, remote=remote)
        if stored and offline:
            self._queued += 1
        return effects


    # ------------------------------------------------------------------ sessions

    def connect(self, sub: Subscriber, now: int) -> list[Effect]:
        """Register a session; an authorized one is linked to its user and gets its queue."""
        self.presence.add(sub)
        effects: list[Effect] = []
        if self.node_id is not None:
            effects.append(Broadcast((opened_event(sub.conn_id, sub.dev_id, sub.user_id, sub.info, ()),)))
        if sub.user_id <= 0:
            return effects
        anywhere = self.presence.user_session_count(sub.dev_id, sub.user_id)
        if anywhere >= MAX_USER_CONNECTIONS:  # refused: not linked
            return [*effects, Disconnect((sub,), "too many sessions for this user")]
        first = not anywhere
        self.presence.link(sub)
        effects.extend(self.personal.opened(sub))
        if first:
            effects.extend(self._status(sub.dev_id, sub.user_id, "online"))
        return effects

    def _status(self, dev_id: int, user_id: int, status: str) -> list[Effect]:
        """``online``/``offline`` on user_status_<id>, to this node's subscribers (if enabled)."""
        wanted = self.send_user_online_events if status == "online" else self.send_user_offline_events
        subs = self.presence.channels.get((dev_id, f"user_status_{user_id}")) if wanted else None
        if not subs:
            return []  # status_frame: no message_send_time, as CppComet (browser-wire.md §3.6)
        return [Deliver(tuple(subs.values()), _frames.status_frame(user_id, status))]

    def disconnect(self, sub: Subscriber, now: int) -> list[Effect]:
        """Forget a session; the user's last-seen time is stored when its last session goes."""
        left = self.presence.remove(sub)
        if left is None:
            return []
        effects: list[Effect] = []
        if self.node_id is not None:
            effects.append(Broadcast((SessionClosed(sub.conn_id),)))
        if left:
            effects.extend(self._tracked(sub, left, (), now))
        if sub.user_id <= 0:
            return effects
        last = self.presence.unlink(sub)
        if last is None:
            return effects  # not linked to its user
        effects += self.personal.closed(sub)
        if last and not self.presence.online_elsewhere(sub.dev_id, sub.user_id):  # the user's last session
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
        left = self.presence.leave(sub)
        effects = self._tracked(sub, left, wanted, now)  # before joining: ``sub`` is told nothing
        wanted = self.presence.join(sub, wanted)
        if "offset" in sub.caps:  # where each newly joined channel's stream is: what recovery starts from
            effects.extend(position_frames(self.state, self._echo.values(), sub, (c for c in wanted if c not in left),
                                           now))
        if self.node_id is not None:  # joining a track_ channel: the others keep who it is (``_remote``)
            event = (opened_event(sub.conn_id, sub.dev_id, sub.user_id, sub.info, wanted) if tracks(wanted)
                     else SessionSubscribed(sub.conn_id, wanted))
            effects.append(Broadcast((event,)))
        return effects

    def _tracked(self, sub: Subscriber, left: Iterable[str], joined: Iterable[str], now: int) -> list[Effect]:
        """Tell this node's members of ``track_*`` channels that ``sub`` (local or remote, in none of
        these channels' local index at this point) left ``left`` and joined ``joined``."""
        effects: list[Effect] = []
        for event, channels in (("unsubscription", left), ("subscription", joined)):
            for channel in channels:
                members = self.presence.channels.get((sub.dev_id, channel)) if channel.startswith("track_") else None
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
            conns = self.presence.user_sessions(dev_id, uid)
            if conns:
                effects.append(Disconnect(conns, "authorization removed"))
        kicked = tuple(u for u in user_ids if self.presence.online_elsewhere(dev_id, u))
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
        kept: dict[tuple[int, str], Position] = {}  # the place of the message a Published that follows is
        for change in changes:
            if is_record(change):
                if type(change) is r.AppendHistory and change.epoch:
                    kept[(change.dev_id, change.channel)] = (change.epoch, change.entry.offset)
                effects += self.remote_records((change,))
            elif type(change) is Published:
                position = kept.pop((change.dev_id, change.channel), None)
                effects += self.publish(change.dev_id, change.channel, change.event, change.message, change.time,
                                        user_id=change.user_id, origin=node, position=position)
            else:
                effects += self.remote_events(node, (cast(ClusterEvent, change),), now)
        return effects

    def remote_events(self, node: str, events: Iterable[ClusterEvent], now: int) -> list[Effect]:
        """Apply another node's events: update the view of its sessions, deliver to ours."""
        remote = self.presence.remote
        effects: list[Effect] = []
        for ev in events:
            match ev:
                case Published():
                    effects.extend(self.publish(ev.dev_id, ev.channel, ev.event, ev.message, ev.time,
                                                user_id=ev.user_id, origin=node))
                case UserMessage():
                    conns = self.presence.user_sessions(ev.dev_id, ev.user_id)
                    if conns and self.node_id in ev.nodes:
                        effects.append(Deliver(conns, _frames.user_frame(ev.event, ev.message)))
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
                        conns = self.presence.user_sessions(ev.dev_id, uid)
                        if conns:
                            effects.append(Disconnect(conns, ev.reason))
                case _:
                    assert_never(ev)
        return effects

    def remote_records(self, records: Iterable[Record]) -> list[Effect]:
        """Apply records another node stored (a message queued for a user with sessions here goes to them)."""
        effects: list[Effect] = []
        for rec in records:
            if self.state.merge(rec):
                effects.extend(self._queue_changed(rec))
        return effects

    def sync_node(self, node: str, sessions: Iterable[SessionOpened], now: int) -> list[Effect]:
        """Make the view of ``node`` equal to its full session list (start-up, after an outage)."""
        return self._remote_changed(self.presence.remote.sync(node, sessions), now)

    def drop_node(self, node: str, now: int) -> list[Effect]:
        """A node is gone (stopped or silent too long): its sessions leave, and the
        last-seen time of users who are now offline everywhere is stored."""
        return self._remote_changed(self.presence.remote.drop(node), now, node_gone=True)

    def remote_nodes(self) -> dict[str, int]:
        """Other nodes with live sessions, and how many each holds."""
        return self.presence.remote.nodes()

    def _remote_changed(self, changes: list[Transition], now: int, *, node_gone: bool = False) -> list[Effect]:
        """The effects of changes in the view of other nodes, decided with this node's sessions.
        ``node_gone``: the sessions' node cannot store last-seen times itself."""
        effects: list[Effect] = []
        for change in changes:
            match change:
                case ChannelsChanged():
                    effects.extend(self._tracked(change.session, change.left, change.joined, now))
                case UserAppeared():
                    if not self.presence.online_here(change.dev_id, change.user_id):
                        effects.extend(self._status(change.dev_id, change.user_id, "online"))
                case UserGone():
                    if not self.presence.online_here(change.dev_id, change.user_id):
                        if node_gone:
                            effects.append(self._persist(r.SetLastSeen(change.dev_id, change.user_id, now)))
                        effects.extend(self._status(change.dev_id, change.user_id, "offline"))
                case _:
                    assert_never(change)
        return effects
