"""Online statistics over time, the sans-IO part: traffic counters, a census of presence, one sample's rows.

``stats_history`` (one row per dev_id, minute and channel, plus a totals row
with channel ``''``) is built from two halves that are read at different
places, so each is a plain value here:

- **traffic**: messages published to a channel and the frames of them handed
  to sessions, counted by ``Hub.publish`` (``_traffic.Traffic``) and taken
  (reset) at each sample. In a cluster each node counts its own, and the sampler sums the
  nodes' counts (``Counts`` travel through the stats store);
- **presence** (``DevCensus``, ``take_census``): sessions and distinct user ids
  online, per dev and for the busiest channels, read from the hub's cluster-wide
  indexes (``Presence``) at the sample's moment, so a user with sessions on two nodes counts once.

``sample_rows`` joins them into the rows one sample writes: per dev the totals
row and at most ``top`` channels (the most subscribers first; channels without
subscribers that carried messages fill the places left, by traffic).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import chain

from ._hub import Hub

__all__ = ["ChannelCensus", "DevCensus", "StatsRow", "sample_rows", "take_census"]

@dataclass(frozen=True, slots=True)
class StatsRow:
    """One row of ``stats_history``: ``channel`` is ``''`` for the dev's totals; ``time`` is unix seconds."""

    dev_id: int
    time: int
    channel: str
    sessions: int
    users: int
    published: int
    delivered: int


@dataclass(frozen=True, slots=True)
class ChannelCensus:
    channel: str
    sessions: int
    users: int


@dataclass(frozen=True, slots=True)
class DevCensus:
    """Who is online for one dev_id (every node of a cluster counted, each user id once)."""

    dev_id: int
    sessions: int
    users: int
    #: The busiest channels (most subscribers first, then by name), at most ``top``.
    channels: tuple[ChannelCensus, ...]
    #: Every channel with a subscriber is in ``channels`` (so any other channel has none).
    complete: bool


def take_census(hub: Hub, top: int) -> list[DevCensus]:
    """Presence per dev from the hub's ``Presence``: this node's indexes (sessions, the (dev, user) keys of
    its user index, its channel index) and the other nodes' (``RemoteSessions``). Read-only; costs a walk
    over sessions and channels: once per sample, never on a hot path."""
    presence = hub.presence
    sessions, users, channels, remote = presence.sessions.values(), presence.users, presence.channels, presence.remote
    session_count = Counter(s.dev_id for s in sessions) + remote.dev_sessions()
    user_count = Counter(dev for dev, _ in set(chain(users, remote.users)))
    counts: dict[tuple[int, str], int] = dict(remote.channels)  # the other nodes' subscribers, then ours
    members = remote.channel_users()  # logged-in users per channel, each counted once
    for key, group in channels.items():
        if group:
            counts[key] = counts.get(key, 0) + len(group)
            members.setdefault(key, set()).update(s.user_id for s in group.values() if s.user_id > 0)
    by_dev: dict[int, list[tuple[int, str]]] = {}
    for (dev, channel), n in counts.items():
        by_dev.setdefault(dev, []).append((n, channel))
    out = []
    for dev in sorted(session_count.keys() | user_count.keys() | by_dev.keys()):
        listed = by_dev.get(dev, [])
        busiest = heapq.nsmallest(top, listed, key=lambda item: (-item[0], item[1]))
        out.append(DevCensus(
            dev, session_count[dev], user_count[dev],
            tuple(ChannelCensus(c, n, len(members.get((dev, c), ()))) for n, c in busiest),
            complete=len(busiest) == len(listed),
        ))
    return out


def sample_rows(at: int, census: Iterable[DevCensus], traffic: Mapping[tuple[int, str], tuple[int, int]], top: int,
                also: Iterable[int] = ()) -> list[StatsRow]:
    """The rows of the sample at ``at``: for every dev with someone online or with traffic (and every dev in
    ``also``, so that a drop to zero is written once), its totals and at most ``top`` channels."""
    by_dev: dict[int, dict[str, tuple[int, int]]] = {}
    for (dev, channel), pair in traffic.items():
        by_dev.setdefault(dev, {})[channel] = pair
    present = {c.dev_id: c for c in census}
    rows: list[StatsRow] = []
    for dev in sorted(present.keys() | by_dev.keys() | set(also)):
        counts = by_dev.get(dev, {})
        seen = present.get(dev) or DevCensus(dev, 0, 0, (), complete=True)
        total_p = sum(p for p, _ in counts.values())
        total_d = sum(d for _, d in counts.values())
        rows.append(StatsRow(dev, at, "", seen.sessions, seen.users, total_p, total_d))
        for ch in seen.channels:
            p, d = counts.get(ch.channel, (0, 0))
            rows.append(StatsRow(dev, at, ch.channel, ch.sessions, ch.users, p, d))
        room = top - len(seen.channels)
        if room > 0 and seen.complete:  # channels nobody is subscribed to, by messages carried
            listed = {ch.channel for ch in seen.channels}
            quiet = [(p + d, c) for c, (p, d) in counts.items() if c not in listed and p + d > 0]
            for _, channel in heapq.nsmallest(room, quiet, key=lambda item: (-item[0], item[1])):
                p, d = counts[channel]
                rows.append(StatsRow(dev, at, channel, 0, 0, p, d))
    return rows
