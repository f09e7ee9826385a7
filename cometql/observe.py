"""What the server reports about itself: the ``Observer`` seam and one statistics snapshot.

Two directions, kept apart on purpose:

- **Events** that nobody else counts (a statement by table and verb, an error
  sent, a limit refusing something, a slow consumer closed, how long an INSERT
  or a delivery took) go to an ``Observer``. Every part that has such events
  gets one through its constructor; ``NULL_OBSERVER`` ignores them, so no code
  path asks "are metrics on?".
- **State** that the hub and the fronts already hold (sessions, channels,
  counters) is never copied as it changes: ``Statistics`` is a frozen snapshot
  taken on demand, and the three readers — ``SHOW STATUS``, ``/admin/stats``
  and Prometheus — all format the same snapshot, so they cannot disagree.

Imports nothing of CometQL: every front and the node may import this module,
and it imports none of them.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "EXPOSITION_CONTENT_TYPE",
    "LIMITS",
    "NULL_OBSERVER",
    "ClusterStatistics",
    "Dashboard",
    "ErrorRecord",
    "MysqlCounters",
    "NullObserver",
    "Observer",
    "OnlineSample",
    "Statistics",
]

#: The Prometheus classic text format (names here never need UTF-8 escaping), understood by every version.
EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The ``limit`` names an observer is told about (one per setting the fronts and the hub apply).
LIMITS = ("sessions_per_ip", "command_rate", "message_size", "subscriptions", "login_attempts", "statement_bounds")


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    time: float
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class OnlineSample:
    time: float
    users: int
    sessions: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The admin page's short memory: online users over the last hour, message rates, recent errors."""

    online_history: tuple[OnlineSample, ...] = ()
    published_per_second: float = 0.0
    delivered_per_second: float = 0.0
    recent_errors: tuple[ErrorRecord, ...] = ()


class Observer(Protocol):
    """Receives the events only the place where they happen can count."""

    def statement(self, table: str, verb: str) -> None: ...

    def error(self, code: int, message: str) -> None: ...

    def limit_hit(self, limit: str) -> None:
        """A limit refused something; ``limit`` is one of ``LIMITS``."""
        ...

    def session_left(self, transport: str, closing: str | None, dropped: int) -> None:
        """A browser session left; ``closing`` says why the server closed it (None: the browser left)."""
        ...

    def insert_took(self, seconds: float) -> None: ...

    def delivery_took(self, seconds: float) -> None:
        """From the hub deciding a delivery until the delivery task has written it to every target."""
        ...

    def exposition(self) -> bytes:
        """The Prometheus text for ``/metrics``."""
        ...

    def dashboard(self) -> Dashboard: ...

    async def run(self) -> None:
        """Background sampling for the dashboard, for the server's lifetime."""
        ...


class NullObserver:
    """Counts nothing: for embedding the hub and fronts where nobody reads metrics (tests, tools)."""

    def statement(self, table: str, verb: str) -> None:
        pass

    def error(self, code: int, message: str) -> None:
        pass

    def limit_hit(self, limit: str) -> None:
        pass

    def session_left(self, transport: str, closing: str | None, dropped: int) -> None:
        pass

    def insert_took(self, seconds: float) -> None:
        pass

    def delivery_took(self, seconds: float) -> None:
        pass

    def exposition(self) -> bytes:
        return b""

    def dashboard(self) -> Dashboard:
        return Dashboard()

    async def run(self) -> None:
        pass


NULL_OBSERVER: Observer = NullObserver()


@dataclass(slots=True)
class MysqlCounters:
    """The MySQL port's connection and statement counts, written by the MySQL front as they happen.

    Owned by the node (not the front) so that the statistics snapshot can read
    them without importing the front.
    """

    online_by_dev: collections.Counter[int] = field(default_factory=collections.Counter)
    statements: int = 0
    opened: int = 0
    closed: int = 0

    def session_opened(self, dev_id: int) -> None:
        self.online_by_dev[dev_id] += 1

    def session_closed(self, dev_id: int) -> None:
        self.online_by_dev[dev_id] -= 1
        if self.online_by_dev[dev_id] <= 0:
            del self.online_by_dev[dev_id]


@dataclass(frozen=True, slots=True)
class ClusterStatistics:
    """Only with a Redis store: is Redis reachable, how often was it not, who else is in the cluster."""

    writer_up: bool
    follower_up: bool
    writer_outages: int
    follower_outages: int
    #: Nodes this node hears from, itself included.
    nodes: int
    remote_sessions: int
    bus_entries: int
    #: Times this node found it had been paused or starved past its heartbeats, by side: the writer then
    #: re-announced its sessions, the follower re-read the other nodes instead of dropping them.
    writer_pauses: int = 0
    follower_pauses: int = 0


@dataclass(frozen=True, slots=True)
class Statistics:
    """One consistent reading of the server, for SHOW STATUS, /admin/stats and Prometheus."""

    time: float
    uptime: float
    sessions: int
    #: Counted only when read (a walk over every session): the dashboard's tick never needs it.
    count_by_transport: Callable[[], dict[str, int]] = field(repr=False, compare=False)
    authorized_users: int
    channels: int
    subscriptions: int
    queued_messages: int
    published: int
    delivered: int
    queued: int
    mysql_connections: int
    mysql_opened: int
    mysql_closed: int
    mysql_statements: int
    cluster: ClusterStatistics | None = None
    #: The delivery canary (``canary.py``): None when disabled, else whether its last probe went round,
    #: and how long the last passing one took.
    canary_ok: bool | None = None
    canary_seconds: float | None = None

    @property
    def sessions_by_transport(self) -> dict[str, int]:
        return self.count_by_transport()

    @property
    def cluster_sessions(self) -> int:
        """Browser sessions on every node (= ``sessions`` without a cluster)."""
        return self.sessions + (self.cluster.remote_sessions if self.cluster is not None else 0)

    @property
    def cluster_nodes(self) -> int:
        return self.cluster.nodes if self.cluster is not None else 1
