"""Personal-message feeds: a user's durable queue handed to this node's sessions, page by page.

A ``users_messages`` row is stored in the user's queue (a ``QueueMessage``
record) and leaves it only once delivered: acknowledged by one session with the
``ack`` capability, or written to a session without it while the user has no
``ack`` session here (at most once, as CppComet's library expects). Memory
never holds a queue: a ``Feed`` exists only while the user has sessions on this
node and messages in flight, and holds the *window*, the messages sent and not
yet acknowledged (at most ``WINDOW`` of them / 8 × ``PAGE_BYTES``), plus the
store position of the last page read.

Flow control (``docs/delivery.md``, "Backlogs and bounds"): the store is
read a page at a time (a ``LoadQueue`` effect; the engine reads the page and
calls ``hub.personal.page``). The next page is asked for once the window has room
again (acks), or, for sessions without acks, once the page's frames have left
their outboxes (``LoadQueue.drain``). A message stored while the feed is
caught up with the store goes out at once ("live"); one stored while a page is
being read, or while the window is full, is read with a later page, so order is
kept. Messages are recognised by id, never sent twice to one session.

Imports only the hub's own modules; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from . import _frames
from ._effects import Deliver, Effect, LoadQueue
from ._subscriber import Subscriber
from .records import QueuedMessage

__all__ = ["ACK", "PAGE", "PAGE_BYTES", "WINDOW", "Feed", "has_ack"]

#: The capability of sessions that acknowledge personal messages.
ACK = "ack"
#: Messages read from the store at a time (and the window size that asks for the next page).
PAGE = 100
#: A page sent at once holds at most this many bytes of message text (but always one message): with
#: large messages a page is cut, so that it fits a session's send bound (``max_queued_bytes``).
PAGE_BYTES = 128 * 1024
#: At most this many messages sent and not acknowledged per user and node; more wait in the store.
WINDOW = 1000


def has_ack(sessions: Iterable[Subscriber]) -> bool:
    return any(ACK in s.caps for s in sessions)


class Feed:
    """One user's delivery on this node (see the module docstring)."""

    __slots__ = ("dev_id", "user_id", "after", "loading", "more", "window", "window_bytes", "deleting", "recent")

    def __init__(self, dev_id: int, user_id: int, more: bool) -> None:
        self.dev_id = dev_id
        self.user_id = user_id
        #: Store position of the last message read with a page (messages sent live have none).
        self.after = 0
        #: A ``LoadQueue`` is out; its answer comes to ``page``.
        self.loading = False
        #: The store may hold messages after ``after`` that were not sent yet.
        self.more = more
        #: Sent, not acknowledged yet, oldest first.
        self.window: dict[str, QueuedMessage] = {}
        self.window_bytes = 0
        #: Ids whose deletion is in flight; ``recent``: deleted while a page was being read.
        self.deleting: set[str] = set()
        self.recent: set[str] = set()

    def idle(self) -> bool:
        """Caught up with the store, nothing unacknowledged: a message may bypass the queue."""
        return not (self.loading or self.more or self.window)

    def keep(self, entries: Iterable[QueuedMessage]) -> None:
        """Sent to a session that acknowledges: in the window until acknowledged."""
        for e in entries:
            self.window[e.id] = e
            self.window_bytes += e.nbytes

    def drop(self, ids: Iterable[str] | None) -> list[QueuedMessage]:
        """Out of the window (acknowledged, deleted; None: all); returns those that were in it."""
        if ids is None:
            gone = list(self.window.values())
            self.window.clear()
        else:
            gone = [e for e in (self.window.pop(i, None) for i in dict.fromkeys(ids)) if e is not None]
        self.window_bytes = self.window_bytes - sum(e.nbytes for e in gone) if self.window else 0
        return gone

    def full(self) -> bool:
        """Too much sent and not acknowledged: a new message waits in the store for a later page."""
        return len(self.window) >= WINDOW or self.window_bytes >= 8 * PAGE_BYTES

    def load(self, drain: tuple[Subscriber, ...] = ()) -> LoadQueue | None:
        """The next page, if the store may have one and the window has room."""
        if self.loading or not self.more or len(self.window) > PAGE // 2 or self.window_bytes > PAGE_BYTES // 2:
            return None
        self.loading, self.more = True, False
        return LoadQueue(self.dev_id, self.user_id, self.after, PAGE - len(self.window), drain)

    def fresh(self, entries: Sequence[tuple[int, QueuedMessage]], limit: int) -> list[QueuedMessage]:
        """A page read: the messages in it not sent yet, in order (the caller sends them)."""
        self.loading = False
        if len(entries) >= limit:
            self.more = True
        skip = self.recent
        out: list[QueuedMessage] = []
        size = 0
        for seq, entry in entries:
            if out and size + entry.nbytes > PAGE_BYTES:  # the rest comes with the next page
                self.more = True
                break
            self.after = max(self.after, seq)
            mid = entry.id
            if mid not in self.window and mid not in self.deleting and mid not in skip:
                out.append(entry)
                size += entry.nbytes
        self.recent = set()
        return out

    def deleted(self, ids: Iterable[str]) -> None:
        """A deletion of these ids is stored or refused: they are no longer in flight."""
        ids = set(ids)
        self.deleting -= ids
        if self.loading:
            self.recent |= ids

    def frames(self, entries: Iterable[QueuedMessage], targets: tuple[Subscriber, ...], *,
               live: bool) -> list[Effect]:
        """One ``Deliver`` per message: CppComet's frame for sessions without capabilities, plus ``id``."""
        if not targets:
            return []
        if live:
            return [Deliver(targets, _frames.user_frames(e.event, e.message, e.id)) for e in entries]
        return [Deliver(targets, _frames.queued_user_frames(e.event, e.message, e.time, e.id)) for e in entries]
