"""The engine: applies the hub's effects, in order, in one place.

Every front (MySQL, browsers) and the cluster follower hand the hub's effects
here: records and cluster events go to the store in one ordered ``commit``,
frames are handed to subscribers without blocking by one delivery task (FIFO,
off the statement's critical path), sessions are closed on request, refusals
are told to the observer. The ``Node`` builds it; it imports no front.

Fan-out is where the server's CPU goes (one ``send()`` per delivery, most of
it in the kernel), so the Python work per delivery is kept to C-level loops:
a session that can take a frame right now exposes its socket
(``frame_socket``, a plain WebSocket with nothing queued), and one fan-out
sends the frame, encoded once per form, to all of them with ``map`` over
``socket.send``; the others get it through their ``send``. The OK of the
statement that decided a fan-out goes first: the MySQL front hands the queue
out right after the OK left (``answered``), in the same task step, so the first
subscriber has the message without a scheduler round; what piles up meanwhile
(a multi-row INSERT, several statements in one loop turn: only the first hands
out at once) is written with one ``send()`` per session for all of its frames
(``fan_out_many``).

Statements are two-phase: all records of one ``apply`` go to the store in one
``commit``, and the hub applies them to memory (``Hub.settle``) only once the
store has them, called by the store in its commit order; a refused commit
leaves memory as it was, raises ``StoreError`` and hands out nothing decided
after its first record. The statement is acknowledged only once its records
are stored.

Personal-message queues are read a page at a time: a ``LoadQueue`` effect is
read from the store by a loader task (a few at once, never two for one user:
the hub asks for one page at a time), after the sessions it names have sent
what their outboxes hold (flow control for sessions that do not acknowledge),
and the page goes back to the hub (``hub.personal.page``), whose effects are
applied like any others. In a cluster a page is read only under the user's
lease (``QueueClaimed`` while another node hands out the same backlog: the
loader waits for the lease while the hub still wants the page).
"""

from __future__ import annotations

import logging
import socket as stdsocket
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import compress, repeat
from operator import attrgetter, not_
from typing import Protocol, assert_never

import trio

from .errors import QueueClaimed, StoreError
from .hub import (
    Broadcast,
    Change,
    Deliver,
    Disconnect,
    Effect,
    Frames,
    Hub,
    LoadQueue,
    Persist,
    Position,
    Record,
    Refused,
    Subscriber,
)
from .hub.records import DeleteQueued
from .observe import NULL_OBSERVER, Observer
from .store import Store
from .wsframes import text_frame

__all__ = ["Direct", "Engine", "fan_out", "fan_out_many"]

log = logging.getLogger("cometql.engine")

#: A page of a user's queue is read once every session it waits for holds at most this much unsent.
DRAIN_BYTES = 64 * 1024
#: Queue pages read at once (different users).
LOADERS = 4
#: Deliveries waiting together are written in one pass (one send per session) up to this many at once.
BATCH = 64
#: A fan-out writes to its first this-many sessions before it looks at the others: the first
#: subscriber has the message without waiting for a walk over thousands of sessions.
FIRST = 16


class Engine:
    def __init__(self, hub: Hub, store: Store, *, observer: Observer = NULL_OBSERVER,
                 clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.store = store
        self.clock = clock
        self.started = clock()
        self.delivered = 0
        #: Told the publish-to-delivery latency (once per Deliver) and the hub's refusals.
        self.observer = observer
        #: Deferred effects with the perf_counter time of the apply() that produced them; a callable is
        #: a delivery probe (the canary), called when the delivery task reaches it.
        self._outgoing: deque[tuple[Deliver | Disconnect | Callable[[], None], float]] = deque()
        self._wake = trio.Event()
        self._deferring = False
        self._loads: deque[LoadQueue] = deque()
        self._reading_inline = False
        self._load_wake = trio.Event()
        #: ``answered`` may hand out in the caller's task: cleared when it did, set again when the delivery
        #: task has run (so a second statement in the same loop turn leaves it to the delivery task)
        self._inline = True

    def now(self) -> int:
        return int(self.clock())

    async def apply(self, effects: Iterable[Effect]) -> None:
        """Store what must be durable now; hand deliveries to the delivery task.

        Deferring delivery keeps fan-out off the statement's critical path: the
        backend's OK leaves before the frames go to (possibly thousands of)
        subscribers. One FIFO keeps every delivery and disconnect in order.
        """
        # the hub has just decided these effects: the start of publish-to-delivery latency
        published = time.perf_counter()
        # records and cluster events, in the order the hub produced them: the store decides what waits
        changes: list[Change] = []
        records: list[Record] = []
        held: list[Deliver | Disconnect | LoadQueue] = []  # decided after a record: handed out once stored
        loads: list[LoadQueue] = []
        for effect in effects:
            match effect:
                case Deliver() | Disconnect() | LoadQueue():
                    if records:
                        held.append(effect)
                    else:
                        self._hand_out(effect, published, loads)
                case Persist(recs):
                    changes.extend(recs)
                    records.extend(recs)
                case Broadcast(events):
                    changes.extend(events)
                case Refused(limit):
                    self.observer.limit_hit(limit)
                case _:
                    assert_never(effect)
        if records:
            # acknowledged only once the store has them; raises StoreError (nothing applied, nothing held sent)
            await self._commit(changes, records, published)
            for effect in held:
                self._hand_out(effect, published, loads)
        elif changes:
            # a clustered store queues events alone without waiting, unless Redis is far behind
            await self.store.commit(changes)
        if loads:  # no loader task (tools, tests): read the pages now, one after another (not nested)
            self._loads.extend(loads)
            if not self._reading_inline:
                self._reading_inline = True
                try:
                    while self._loads:
                        await self._load(self._loads.popleft())
                finally:
                    self._reading_inline = False

    def apply_nowait(self, effects: Sequence[Effect]) -> bool:
        """``apply`` without awaiting, when no effect needs the store: no record, no cluster event, no
        queue page to read inline. True once applied (exactly as ``apply`` would); False, with nothing
        applied, when the caller must ``await apply(effects)`` instead (in a task of its own).

        The browser port's hot paths (a session opens, subscribes, leaves) nearly always qualify on one
        node: they then cost no task, no cancel scope and no checkpoint."""
        deferring = self._deferring
        for effect in effects:
            kind = type(effect)
            if kind is Persist or kind is Broadcast or (kind is LoadQueue and not deferring):
                return False
        published = time.perf_counter()
        for effect in effects:
            if type(effect) is Refused:
                self.observer.limit_hit(effect.limit)
            else:
                self._hand_out(effect, published)  # type: ignore[arg-type]
        return True

    async def _commit(self, changes: list[Change], records: list[Record], published: float) -> None:
        """One statement's records: the store settles them in its commit order (applied, or refused).

        What settling decides before its first record (the frames of messages just stored in a
        channel's history, with their offsets) is handed out right there, in commit order, so
        that every session gets a channel's messages in offset order."""
        follow: list[Effect] = []

        def settle(stored: bool, positions: Sequence[Position] = ()) -> None:
            for effect in self.hub.settle(records, stored, positions):
                if not follow and type(effect) in (Deliver, Disconnect):
                    self._hand_out(effect, published)  # type: ignore[arg-type]
                else:
                    follow.append(effect)

        # deleting delivered messages only (acks): nothing waits on it, it may share a later transaction
        lazy = all(type(rec) is DeleteQueued for rec in records)
        await self.store.commit(changes, settle, lazy=lazy)
        if follow:  # a message queued for a user who connected meanwhile: this statement is stored already
            try:
                await self.apply(follow)
            except StoreError as exc:
                log.error("could not hand out a message queued meanwhile (it stays queued): %s", exc)

    def probe(self, reached: Callable[[], None]) -> None:
        """Call ``reached`` once every delivery handed out before it has been handed to its sessions:
        the canary's proof that the delivery task is alive (counted as no delivery)."""
        if self._deferring:
            self._outgoing.append((reached, time.perf_counter()))
            self._wake.set()
        else:
            reached()

    def _hand_out(self, effect: Deliver | Disconnect | LoadQueue, published: float,
                  loads: list[LoadQueue] | None = None) -> None:
        if isinstance(effect, LoadQueue):
            if self._deferring:
                self._loads.append(effect)
                self._load_wake.set()
            else:
                assert loads is not None, "a LoadQueue outside apply() before the delivery task runs"
                loads.append(effect)
        elif self._deferring:
            self._outgoing.append((effect, published))
            self._wake.set()
        else:
            self._deliver(effect)

    def _deliver(self, effect: Deliver | Disconnect | Callable[[], None]) -> None:
        if type(effect) is Deliver:
            fan_out(effect.targets, effect.frame)
            self.delivered += len(effect.targets)
        elif type(effect) is Disconnect:
            for target in effect.targets:
                target.close(effect.reason)
        elif callable(effect):
            effect()

    async def _load(self, load: LoadQueue) -> None:
        """Read the page a ``LoadQueue`` asks for, once its sessions have drained, and hand it to the hub."""
        while True:
            while any(_unsent(t) > DRAIN_BYTES for t in load.drain):
                await trio.sleep(0.005)
            try:
                page = await self.store.queue_page(load.dev_id, load.user_id, load.after, load.limit)
                break
            except QueueClaimed as exc:  # another node hands out this backlog: wait for its lease to end
                if not self.hub.personal.wants(load):
                    return
                await trio.sleep(min(max(exc.retry_after, 0.05), 0.5))
            except StoreError as exc:
                log.error("could not read a user's queue (it stays queued): %s", exc)
                self.hub.personal.page_failed(load)
                return
        try:
            await self.apply(self.hub.personal.page(load, page, self.now()))
        except StoreError as exc:
            log.error("could not hand out queued messages (they stay queued): %s", exc)

    async def _run_loads(self) -> None:
        """The loader task: reads queue pages, at most ``LOADERS`` at once."""
        limiter = trio.CapacityLimiter(LOADERS)

        async def one(load: LoadQueue) -> None:
            async with limiter:
                await self._load(load)

        async with trio.open_nursery() as nursery:
            while True:
                await self._load_wake.wait()
                self._load_wake = trio.Event()
                while self._loads:
                    nursery.start_soon(one, self._loads.popleft())

    async def run_deliveries(self) -> None:
        """The delivery task (and the loader): runs for the server's lifetime, applying deliveries in order."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._run_loads)
            await self._run_deliveries()
            nursery.cancel_scope.cancel()  # pragma: no cover - deliveries run until cancelled

    def answered(self) -> None:
        """A statement's answer has left (the MySQL writer calls it): hand out what waits, now.

        So the fan-out a statement decided starts in the same task step as its
        OK, without a scheduler round for the delivery task. Only the first
        statement of a loop turn does it: once it has, the others that answer
        before the delivery task has run (a burst of INSERTs from several
        connections) leave their deliveries to it, which writes them together,
        one send per session."""
        if self._inline and self._outgoing:
            self._inline = False  # the delivery task was woken by what is queued: it sets this again
            self.hand_out()

    def hand_out(self) -> None:
        """Hand out every deferred delivery now, in order, in the caller's task; deliveries waiting
        together go out with one write per session."""
        outgoing = self._outgoing
        observer = self.observer
        while outgoing:
            effect, published = outgoing.popleft()
            if type(effect) is not Deliver:
                self._deliver(effect)
                continue
            if not outgoing or type(outgoing[0][0]) is not Deliver:
                self._deliver(effect)
                observer.delivery_took(time.perf_counter() - published)
                continue
            batch, times = [effect], [published]
            while outgoing and type(outgoing[0][0]) is Deliver and len(batch) < BATCH:
                more, at = outgoing.popleft()
                batch.append(more)  # type: ignore[arg-type]
                times.append(at)
            fan_out_many(batch)
            self.delivered += sum(len(d.targets) for d in batch)
            done = time.perf_counter()
            for at in times:
                observer.delivery_took(done - at)

    async def _run_deliveries(self) -> None:
        self._deferring = True
        try:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                self.hand_out()
                self._inline = True
        finally:
            self._deferring = False
            while self._outgoing:  # shutting down: still hand out what was decided
                self._deliver(self._outgoing.popleft()[0])


def _unsent(target: Subscriber) -> int:
    """Bytes a session still has to send (0 once it is closing: they will never leave)."""
    if getattr(target, "closing", None) is not None:
        return 0
    return int(getattr(target, "queued_bytes", 0))


# ------------------------------------------------------------------------------------------ fan-out


class Direct(Protocol):
    """A subscriber the engine may write a fan-out's frame to itself (a plain WebSocket session).

    ``frame_socket`` is its socket while a WebSocket text frame may go to it at
    once with a non-blocking ``send`` (nothing of the session queued, not
    closing), else None (then its ``send`` decides). What the socket does not
    take of a frame is handed back with ``unsent``, which queues it as the
    session's own writes do (bounded: a slow consumer is closed)."""

    frame_socket: stdsocket.socket | None

    def send(self, frame: bytes) -> None: ...

    def unsent(self, rest: memoryview) -> None: ...


_send = stdsocket.socket.send
_caps = attrgetter("caps")


def fan_out(targets: Sequence[Subscriber], frame: bytes | Frames) -> None:
    """Hand one message to every target: each form encoded once (``Frames``: by capabilities)."""
    if type(frame) is not Frames:  # one frame for everyone (bytes), as CppComet
        if len(targets) > 4 * FIRST:
            _fan_out(targets[:FIRST], frame)
            targets = targets[FIRST:]
        _fan_out(targets, frame)
        return
    capable = list(map(bool, map(_caps, targets)))
    if any(capable):
        _fan_out(list(compress(targets, capable)), frame.capable)
    if not all(capable):
        _fan_out(list(compress(targets, map(not_, capable))), frame.legacy)


def _fan_out(targets: Sequence[Subscriber], payload: bytes) -> None:
    """``payload`` to ``targets``: their ``send``, or, for sessions with a ``frame_socket``, one C-level
    loop of ``socket.send`` with the text frame (an error or a partial send goes back to the session)."""
    socks: list[stdsocket.socket | None] = list(map(getattr, targets, repeat("frame_socket"), repeat(None)))
    direct: Sequence[Direct] = targets  # type: ignore[assignment]
    if None in socks:
        for target in compress(targets, map(not_, socks)):
            target.send(payload)
        direct = list(compress(targets, socks))  # type: ignore[arg-type]
        socks = list(filter(None, socks))
        if not socks:
            return
    wire = text_frame(payload)
    size = len(wire)
    sent: list[int] = []
    sends = map(_send, socks, repeat(wire))  # type: ignore[arg-type]
    while True:
        try:
            sent.extend(sends)  # stops at an error; what was sent is in ``sent``, the map goes on after it
            break
        except OSError:  # full (EAGAIN) or gone: the session's own write meets it again and decides
            failed = direct[len(sent)]
            sent.append(size)
            failed.send(payload)
    if sent.count(size) != len(sent):
        view = memoryview(wire)
        for session, n in zip(direct, sent, strict=True):
            if n != size:
                session.unsent(view[n:])


def fan_out_many(delivers: Sequence[Deliver]) -> None:
    """Several deliveries that waited together: each session's frames, in order, in one ``send()``."""
    queued: dict[int, list] = {}  # id(target) -> [target, payload, payload, ...]
    for deliver in delivers:
        frame = deliver.frame
        for target in deliver.targets:
            payload = frame.form(target.caps) if type(frame) is Frames else frame
            entry = queued.get(id(target))
            if entry is None:
                queued[id(target)] = [target, payload]
            else:
                entry.append(payload)
    wires: dict[bytes, bytes] = {}
    for target, *payloads in queued.values():
        sock = getattr(target, "frame_socket", None)
        if sock is None:
            for payload in payloads:
                target.send(payload)
            continue
        parts = []
        for payload in payloads:
            wire = wires.get(payload)
            if wire is None:
                wire = wires[payload] = text_frame(payload)
            parts.append(wire)
        data = b"".join(parts) if len(parts) > 1 else parts[0]
        try:
            n = sock.send(data)
        except OSError:  # as in _fan_out: the session's own writes meet it again and decide
            for payload in payloads:
                target.send(payload)
            continue
        if n != len(data):
            target.unsent(memoryview(data)[n:])
