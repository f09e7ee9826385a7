"""Presence: who is online and where, on this node and (through ``RemoteSessions``) on the others.

``Presence`` owns this node's indexes of its browser sessions: every session
by id, the channel index (who gets a channel's messages), the user index (who
gets a user's messages) and each session's channel list. It holds the view of
the other nodes' sessions (``remote``) beside them, so that a question about
the whole cluster ("is this user online anywhere", "how many subscribers has
this channel") is answered in one place. Rules:

1. Only index changes and lookups: no effects, no frames, no records. The hub
   decides what a change means (online events, last-seen times, broadcasts)
   and calls ``Presence`` to change the indexes.
2. The hub reads ``sessions``, ``channels`` and ``users`` directly on its hot
   paths (and the census walks them); only this class writes them. The remote
   view is changed through ``remote``'s own methods, which return transitions.
3. No index ever holds an empty group: a channel without a subscriber here or
   a user without a session here has no key.
"""

from __future__ import annotations

import heapq

from ._remote import RemoteSessions
from ._shared import Shared
from ._subscriber import Subscriber

__all__ = ["Presence"]


class Presence:
    """This node's session, channel and user indexes, and the other nodes' sessions (``remote``)."""

    __slots__ = ("_lists", "_sub_channels", "channels", "remote", "sessions", "users")

    def __init__(self) -> None:
        #: conn_id -> session, every session of this node.
        self.sessions: dict[int, Subscriber] = {}
        #: (dev_id, channel) -> {conn_id: session}, this node's subscribers of each channel.
        self.channels: dict[tuple[int, str], dict[int, Subscriber]] = {}
        #: (dev_id, user_id) -> {conn_id: session}, this node's sessions linked to each user.
        self.users: dict[tuple[int, int], dict[int, Subscriber]] = {}
        self._sub_channels: dict[int, tuple[str, ...]] = {}  # tuples: idle sessions are many
        self._lists: Shared[tuple[str, ...]] = Shared()  # one copy of each channel list, for all sessions alike
        #: Other nodes' sessions (empty without a cluster).
        self.remote = RemoteSessions()

    # ------------------------------------------------------------- index changes

    def add(self, sub: Subscriber) -> None:
        """A new session of this node, in no channel yet and linked to no user."""
        self.sessions[sub.conn_id] = sub
        self._sub_channels.setdefault(sub.conn_id, ())

    def remove(self, sub: Subscriber) -> tuple[str, ...] | None:
        """Forget a session and take it out of its channels; returns them (None for an unknown
        session). Its user link stays: ``unlink`` takes it out of the user index."""
        if self.sessions.pop(sub.conn_id, None) is None:
            return None
        left = self._sub_channels.pop(sub.conn_id, ())
        if left:
            self._unindex(sub, left)
            self._lists.release(left)
        return left

    def leave(self, sub: Subscriber) -> tuple[str, ...]:
        """Take a session out of its channels' index, before ``join`` lists its new ones; returns the old ones."""
        left = self._sub_channels.get(sub.conn_id, ())
        self._unindex(sub, left)
        self._lists.release(left)
        return left

    def join(self, sub: Subscriber, channels: tuple[str, ...]) -> tuple[str, ...]:
        """Index a session in ``channels``, now its channel list (after ``leave``); returns the list as held,
        one copy shared by every session with an equal one (its names too: the first session's)."""
        channels = self._lists.hold(channels) if channels else ()
        for channel in channels:
            self.channels.setdefault((sub.dev_id, channel), {})[sub.conn_id] = sub
        self._sub_channels[sub.conn_id] = channels
        return channels

    def _unindex(self, sub: Subscriber, channels: tuple[str, ...]) -> None:
        index = self.channels
        for channel in channels:
            ckey = (sub.dev_id, channel)
            members = index.get(ckey)
            if members is not None:
                members.pop(sub.conn_id, None)
                if not members:
                    del index[ckey]

    def link(self, sub: Subscriber) -> None:
        """Link an authorized session to its user (who gets the user's messages here)."""
        self.users.setdefault((sub.dev_id, sub.user_id), {})[sub.conn_id] = sub

    def unlink(self, sub: Subscriber) -> bool | None:
        """Take a session out of its user's sessions: None if it was not linked, else whether it
        was the user's last session on this node."""
        key = (sub.dev_id, sub.user_id)
        conns = self.users.get(key)
        if conns is None or conns.pop(sub.conn_id, None) is None:
            return None
        if conns:
            return False
        del self.users[key]
        return True

    # ------------------------------------------------------------------- lookups

    def user_sessions(self, dev_id: int, user_id: int) -> tuple[Subscriber, ...]:
        """The user's sessions on this node."""
        conns = self.users.get((dev_id, user_id))
        return tuple(conns.values()) if conns else ()

    def online_here(self, dev_id: int, user_id: int) -> bool:
        return (dev_id, user_id) in self.users

    def online_elsewhere(self, dev_id: int, user_id: int) -> bool:
        """Whether another node holds a session of the user."""
        return (dev_id, user_id) in self.remote.users

    def online(self, dev_id: int, user_id: int) -> bool:
        """Whether any node (this one included) holds a session of the user."""
        key = (dev_id, user_id)
        return key in self.users or key in self.remote.users

    def user_session_count(self, dev_id: int, user_id: int) -> int:
        """The user's sessions on every node."""
        key = (dev_id, user_id)
        return len(self.users.get(key, ())) + sum(self.remote.users.get(key, {}).values())

    def online_users(self, dev_id: int) -> set[int]:
        """Ids of the dev's users with a session on some node."""
        return {u for ix in (self.users, self.remote.users) for d, u in ix if d == dev_id}

    def channel_count(self, dev_id: int, channel: str) -> int:
        """Subscribers of a channel on every node."""
        return len(self.channels.get((dev_id, channel), ())) + self.remote.channels.get((dev_id, channel), 0)

    def channel_members(self, dev_id: int, channel: str) -> list[Subscriber]:
        """Sessions subscribed to a channel on every node: this node's, then the others' (as ``RemoteSession``;
        one not ``described`` has its ``ConnInfo`` in its node's session hash only)."""
        members: list[Subscriber] = list(self.channels.get((dev_id, channel), {}).values())
        members.extend(self.remote.members(dev_id, (channel,)).get(channel, ()))
        return members

    def channel_names(self, dev_id: int) -> list[str]:
        """Channels of a dev with at least one subscriber on some node."""
        names = dict.fromkeys(c for (d, c) in self.channels if d == dev_id)
        names.update(dict.fromkeys(c for (d, c) in self.remote.channels if d == dev_id))
        return list(names)

    def by_transport(self) -> dict[str, int]:
        """This node's sessions counted by their ``transport`` attribute (websocket, longpoll; "other" if none)."""
        counts: dict[str, int] = {}
        for sub in self.sessions.values():
            transport = getattr(sub, "transport", "other")
            counts[transport] = counts.get(transport, 0) + 1
        return counts

    def busiest(self, count: int) -> list[tuple[int, str, int]]:
        """This node's ``count`` channels with the most subscribers, across dev_ids: (dev_id, channel, subscribers)."""
        top = heapq.nlargest(count, self.channels.items(), key=lambda item: len(item[1]))
        return [(dev, channel, len(subs)) for (dev, channel), subs in top]

    def session_count(self, dev_id: int) -> int:
        """This node's sessions of a dev."""
        return sum(1 for s in self.sessions.values() if s.dev_id == dev_id)

    def subscriptions(self) -> int:
        """(Session, channel) pairs on this node."""
        return sum(len(s) for s in self.channels.values())
