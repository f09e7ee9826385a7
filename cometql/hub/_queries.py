"""The hub's read-only queries (presence counts, users_time, statistics), split from ``_hub`` for size.

``HubQueries`` is a base of ``Hub``: these methods read the indexes ``Hub`` keeps and change nothing.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from ._inflight import InFlight
from ._remote import RemoteSessions
from ._state import DurableState
from ._subscriber import Subscriber

__all__ = ["HubQueries", "HubStatistics"]


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


class HubQueries:
    """Reads over the state ``Hub`` owns (declared here, set by ``Hub.__init__``)."""

    state: DurableState
    _remote: RemoteSessions
    _sessions: dict[int, Subscriber]
    _channels: dict[tuple[int, str], dict[int, Subscriber]]
    _users: dict[tuple[int, int], dict[int, Subscriber]]
    _in_flight: InFlight
    _published: int
    _queued: int

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
