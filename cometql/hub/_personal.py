"""Personal messages (``users_messages``): queue, bound, deliver page by page, acknowledge.

``Personal`` is the hub's part that owns the per-user ``Feed`` of every user
with a session on this node (``_feeds`` explains feeds and flow control). The
durable side is ``DurableState``'s per-user count and bytes (never the
messages); the messages are in the store and come back through ``LoadQueue``.

Rules (``docs/delivery.md``, "Personal messages"):

- every message is stored first (``QueueMessage``) and gets a stable id (the
  backend's ``index`` when it gives one: a retried INSERT with the same key is
  dropped while the key is remembered). One exception keeps CppComet's cost and
  frames: a user online only here, only with sessions without the ``ack``
  capability, and nothing of theirs queued or in flight gets the frame at once,
  unstored (at most once, as before), unless the message has a key;
- a stored message goes to every session of its user here; it is deleted once
  one ``ack`` session acknowledges it, or at once when the user has no ``ack``
  session here (written to a socket counts as delivered for those);
- a message never acknowledged stays queued and is sent again to the user's
  next session (on any node), never again to the same session;
- a user's queue holds at most ``max_count`` messages and ``max_bytes`` bytes
  (stored plus in flight): further messages are refused (``QueueFull``);
- with ``ttl`` set, a message older than that is deleted when a page reads it,
  instead of being sent.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from . import _frames
from ._effects import Deliver, Effect, LoadQueue, Persist
from ._feeds import Feed, has_ack
from ._inflight import InFlight
from ._state import DurableState
from ._subscriber import Subscriber
from .records import DeleteQueued, QueuedMessage, QueueMessage, Record

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_COUNT", "Personal", "QueueFull"]

DEFAULT_MAX_COUNT = 10_000
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: Idempotency keys remembered (node-wide, the newest): a retry within this many INSERTs is dropped.
KEYS_REMEMBERED = 100_000

Key = tuple[int, int]


class QueueFull(Exception):
    """A user's queue is at its bound: the message is refused (nothing stored, nothing sent)."""

    def __init__(self, user_id: int, max_count: int, max_bytes: int) -> None:
        super().__init__(f"the message queue of user {user_id} is full "
                         f"(at most {max_count} messages and {max_bytes} bytes until delivered)")
        self.user_id = user_id


class Personal:
    __slots__ = ("_state", "_in_flight", "_persist", "_sessions", "_new_id", "feeds", "max_count",
                 "max_bytes", "ttl", "_keys", "_keys_in_flight", "_always_load")

    def __init__(self, state: DurableState, in_flight: InFlight, persist: Callable[[Record], Persist],
                 sessions: Callable[[int, int], tuple[Subscriber, ...]], new_id: Callable[[], str], *,
                 max_count: int = DEFAULT_MAX_COUNT, max_bytes: int = DEFAULT_MAX_BYTES, ttl: int = 0,
                 always_load: bool = False) -> None:
        self._state = state
        self._in_flight = in_flight
        self._persist = persist
        self._sessions = sessions
        self._new_id = new_id
        self.feeds: dict[Key, Feed] = {}
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.ttl = ttl
        #: Idempotency keys of stored messages (the newest), and of messages not stored yet.
        self._keys: OrderedDict[tuple[int, int, str], None] = OrderedDict()
        self._keys_in_flight: set[tuple[int, int, str]] = set()
        #: A cluster node reads a page at every login: two nodes may both delete a message they both
        #: wrote to sessions without acks, so its count of a user's queue can be low, never its store.
        self._always_load = always_load

    # ---------------------------------------------------------------- sending

    def send(self, dev_id: int, user_id: int, event: str, message: str, now: int, *,
             key: str | None = None, remote: bool = False) -> tuple[bool, list[Effect]]:
        """A new message; (stored, effects). ``remote``: the user has sessions on another node."""
        k = (dev_id, user_id)
        if key is not None and ((dev_id, user_id, key) in self._keys or (dev_id, user_id, key) in self._keys_in_flight):
            return False, []  # a retry of a message already accepted
        conns = self._sessions(dev_id, user_id)
        feed = self.feeds.get(k)
        if (key is None and conns and not remote and (feed is None or feed.idle()) and not has_ack(conns)
                and not self._state.has_queue(dev_id, user_id) and not self._in_flight.queueing(k)):
            return False, [Deliver(conns, _frames.user_frame(event, message))]
        entry = QueuedMessage(self._new_id() if key is None else key, now, event, message)
        count, size = self._state.queue_size(dev_id, user_id)
        more_count, more_size = self._in_flight.queueing(k) or (0, 0)
        if count + more_count >= self.max_count or size + more_size + entry.nbytes > self.max_bytes:
            raise QueueFull(user_id, self.max_count, self.max_bytes)
        if key is not None:
            self._keys_in_flight.add((dev_id, user_id, key))
        return True, [self._persist(QueueMessage(dev_id, user_id, entry))]

    def settled(self, rec: QueueMessage, stored: bool) -> None:
        """A keyed message is remembered once stored; refused, a retry with its key is welcome."""
        key = (rec.dev_id, rec.user_id, rec.entry.id)
        if key in self._keys_in_flight:
            self._keys_in_flight.discard(key)
            if stored:
                self._keys[key] = None
                if len(self._keys) > KEYS_REMEMBERED:
                    self._keys.popitem(last=False)

    def _send(self, feed: Feed, entries: Sequence[QueuedMessage], *, live: bool) -> list[Effect]:
        """Send ``entries`` to every session of the feed's user here; then the next page, if due."""
        targets = self._sessions(feed.dev_id, feed.user_id)
        effects = feed.frames(entries, targets, live=live)
        if has_ack(targets):
            feed.keep(entries)
        elif entries:  # no session here acknowledges: written to the sockets counts as delivered
            effects.append(self._delete(feed, entries))
        return self._next(feed, effects, targets)

    def _next(self, feed: Feed, effects: list[Effect], targets: tuple[Subscriber, ...]) -> list[Effect]:
        """The next page if due; a feed with nothing in flight is forgotten (most users have none)."""
        load = feed.load(() if has_ack(targets) else targets)
        if load is not None:
            effects.append(load)
        elif feed.idle() and not feed.deleting:
            self.feeds.pop((feed.dev_id, feed.user_id), None)
        return effects

    def _feed(self, dev_id: int, user_id: int) -> Feed | None:
        """The user's feed, made when a message is stored for a user with sessions here."""
        feed = self.feeds.get((dev_id, user_id))
        if feed is None and self._sessions(dev_id, user_id):
            feed = self.feeds[(dev_id, user_id)] = Feed(dev_id, user_id, False)
        return feed

    def _delete(self, feed: Feed, entries: Iterable[QueuedMessage]) -> Persist:
        entries = list(entries)
        ids = tuple(e.id for e in entries)
        feed.deleting.update(ids)
        return self._persist(DeleteQueued(feed.dev_id, feed.user_id, ids, sum(e.nbytes for e in entries)))

    # --------------------------------------------------------------- sessions

    def opened(self, sub: Subscriber) -> list[Effect]:
        """A session of an authorized user is linked here: it gets what is unacknowledged, then the queue."""
        k = (sub.dev_id, sub.user_id)
        feed = self.feeds.get(k)
        if feed is None:
            if not self._always_load and not self._state.has_queue(*k):
                return []  # nothing queued: no feed until a message is stored
            feed = self.feeds[k] = Feed(sub.dev_id, sub.user_id, True)
        effects = feed.frames(list(feed.window.values()), (sub,), live=False)
        return self._next(feed, effects, self._sessions(*k))

    def closed(self, sub: Subscriber) -> list[Effect]:
        """A session of the user left; ``sessions`` no longer lists it."""
        k = (sub.dev_id, sub.user_id)
        feed = self.feeds.get(k)
        if feed is None:
            return []
        rest = self._sessions(*k)
        if not rest:
            del self.feeds[k]  # what was not acknowledged stays queued, for the next session
            return []
        effects: list[Effect] = []
        if feed.window and not has_ack(rest):  # the rest had those frames too, and they do not acknowledge
            effects.append(self._delete(feed, feed.drop(None)))
        return self._next(feed, effects, rest)

    # ------------------------------------------------------- store and browser

    def stored(self, rec: QueueMessage) -> list[Effect]:
        """A message is in the store (stored here, or by another node): live if the feed is caught up."""
        feed = self._feed(rec.dev_id, rec.user_id)
        if feed is None:
            return []
        if feed.loading or feed.more or feed.full():
            feed.more = True  # a later page reads it, in order
            return self._next(feed, [], self._sessions(feed.dev_id, feed.user_id))
        return self._send(feed, (rec.entry,), live=True)

    def deleted(self, rec: DeleteQueued) -> list[Effect]:
        """A deletion is stored or refused (here), or stored by another node (an ack there)."""
        feed = self.feeds.get((rec.dev_id, rec.user_id))
        if feed is None:
            return []
        if rec.ids is None:  # DELETE FROM users_messages: nothing of it is to be acknowledged
            feed.drop(None)
            feed.more = False
            return self._next(feed, [], self._sessions(feed.dev_id, feed.user_id))
        feed.drop(rec.ids)
        feed.deleted(rec.ids)
        return self._next(feed, [], self._sessions(feed.dev_id, feed.user_id))

    def page(self, load: LoadQueue, entries: Sequence[tuple[int, QueuedMessage]], now: int) -> list[Effect]:
        """The engine read the page ``load`` asked for (``entries``: store position and message)."""
        feed = self.feeds.get((load.dev_id, load.user_id))
        if feed is None or not feed.loading:
            return []  # the user left meanwhile: the messages stay queued
        fresh = feed.fresh(entries, load.limit)
        effects: list[Effect] = []
        if self.ttl:
            old = [e for e in fresh if e.time < now - self.ttl]
            if old:
                effects.append(self._delete(feed, old))
                fresh = [e for e in fresh if e.time >= now - self.ttl]
        return effects + self._send(feed, fresh, live=False)

    def wants(self, load: LoadQueue) -> bool:
        """Whether the page ``load`` asked for is still awaited (its user has not left meanwhile)."""
        feed = self.feeds.get((load.dev_id, load.user_id))
        return feed is not None and feed.loading and feed.after == load.after

    def page_failed(self, load: LoadQueue) -> None:
        """The store could not be read: the messages stay queued for a later page or session."""
        feed = self.feeds.get((load.dev_id, load.user_id))
        if feed is not None and feed.loading:
            feed.loading, feed.more = False, True

    def ack(self, sub: Subscriber, ids: Iterable[str]) -> list[Effect]:
        """A session acknowledges messages it got: they leave the queue (ids it does not know are ignored)."""
        feed = self.feeds.get((sub.dev_id, sub.user_id))
        if feed is None:
            return []
        acked = feed.drop(ids)
        if not acked:
            return []
        return self._next(feed, [self._delete(feed, acked)], self._sessions(sub.dev_id, sub.user_id))
