"""The engine: applies the hub's effects, in order, in one place.

Every front (MySQL, browsers) and the cluster follower hand the hub's effects
here: records and cluster events go to the store in one ordered ``commit``,
frames are handed to subscribers without blocking by one delivery task (FIFO,
off the statement's critical path), sessions are closed on request, refusals
are told to the observer. The ``Node`` builds it; it imports no front.

Statements are two-phase: all records of one ``apply`` go to the store in one
``commit``, and the hub applies them to memory (``Hub.settle``) only once the
store has them, called by the store in its commit order; a refused commit
leaves memory as it was, raises ``StoreError`` and hands out nothing decided
after its first record. The statement is acknowledged only once its records
are stored.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import assert_never

import trio

from .errors import StoreError
from .hub import Broadcast, Change, Deliver, Disconnect, Effect, Frames, Hub, Persist, Position, Record, Refused
from .observe import NULL_OBSERVER, Observer
from .store import Store

__all__ = ["Engine"]

log = logging.getLogger("cometql.engine")


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
        held: list[Deliver | Disconnect] = []  # decided after a record: handed out once it is stored
        for effect in effects:
            match effect:
                case Deliver() | Disconnect():
                    if records:
                        held.append(effect)
                    else:
                        self._hand_out(effect, published)
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
                self._hand_out(effect, published)
        elif changes:
            # a clustered store queues events alone without waiting, unless Redis is far behind
            await self.store.commit(changes)

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

        await self.store.commit(changes, settle)
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

    def _hand_out(self, effect: Deliver | Disconnect, published: float) -> None:
        if self._deferring:
            self._outgoing.append((effect, published))
            self._wake.set()
        else:
            self._deliver(effect)

    def _deliver(self, effect: Deliver | Disconnect | Callable[[], None]) -> None:
        if type(effect) is Deliver:
            frame = effect.frame
            if type(frame) is Frames:  # forms differ by capabilities: each encoded once, when first needed
                for target in effect.targets:
                    target.send(frame.form(target.caps))
            else:  # one frame for everyone (bytes), as CppComet
                for target in effect.targets:
                    target.send(frame)
            self.delivered += len(effect.targets)
        elif type(effect) is Disconnect:
            for target in effect.targets:
                target.close(effect.reason)
        elif callable(effect):
            effect()

    async def run_deliveries(self) -> None:
        """The delivery task: runs for the server's lifetime, applying deliveries in order."""
        self._deferring = True
        try:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                outgoing = self._outgoing
                observer = self.observer
                while outgoing:
                    effect, published = outgoing.popleft()
                    self._deliver(effect)
                    if type(effect) is Deliver:
                        observer.delivery_took(time.perf_counter() - published)
        finally:
            self._deferring = False
            while self._outgoing:  # shutting down: still hand out what was decided
                self._deliver(self._outgoing.popleft()[0])
