"""The hub's read-only queries (presence counts, users_time, statistics), split from ``_hub`` for size.

``HubQueries`` is a base of ``Hub``: these methods read the state ``Hub`` holds and change nothing.
Presence lookups are ``Presence``'s (``_presence``); what needs more than presence (``users_time``:
last-seen times stored or on their way) is combined here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._inflight import InFlight
from ._presence import Presence
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
    presence: Presence
    _in_flight: InFlight
    _published: int
    _queued: int

    def user_time(self, dev_id: int, user_id: int) -> int:
        """users_time: 0 while online, the last-seen unix time after, -1 when unknown."""
        # a user whose last-seen time is not stored yet is still online
        if self.presence.online(dev_id, user_id) or (dev_id, user_id) in self._in_flight.leaving:
            return 0
        seen = self.state.last_seen(dev_id, user_id)
        return -1 if seen is None else seen

    def known_users(self, dev_id: int) -> list[int]:
        """Every user id with a users_time value (online now or seen before)."""
        ids = set(self.state.seen_users(dev_id))
        ids.update(self.presence.online_users(dev_id))
        ids.update(u for d, u in self._in_flight.leaving if d == dev_id)
        return sorted(ids)

    def channel_count(self, dev_id: int, channel: str) -> int:
        """Subscribers of a channel on every node."""
        return self.presence.channel_count(dev_id, channel)

    def channel_members(self, dev_id: int, channel: str) -> list[Subscriber]:
        """Sessions subscribed to a channel on every node (remote ones as ``RemoteSession``)."""
        return self.presence.channel_members(dev_id, channel)

    def channels(self, dev_id: int) -> list[str]:
        """Channels of a dev with at least one subscriber on some node."""
        return self.presence.channel_names(dev_id)

    def sessions_by_transport(self) -> dict[str, int]:
        """Live sessions counted by their ``transport`` attribute (websocket, longpoll; "other" if none)."""
        return self.presence.by_transport()

    def busiest_channels(self, count: int) -> list[tuple[int, str, int]]:
        """The ``count`` channels with the most subscribers, across dev_ids: (dev_id, channel, subscribers)."""
        return self.presence.busiest(count)

    def sessions(self, dev_id: int) -> int:
        return self.presence.session_count(dev_id)

    def statistics(self) -> HubStatistics:
        presence = self.presence
        return HubStatistics(
            sessions=len(presence.sessions),
            authorized_users=len(presence.users),
            channels=len(presence.channels),
            subscriptions=presence.subscriptions(),
            queued_messages=self.state.queued_messages(),
            published=self._published,
            queued=self._queued,
        )
