"""The engine: applies the hub's effects, in order, in one place.

Every front (MySQL, browsers) and the cluster follower hand the hub's effects
here: records and cluster events go to the store in one ordered ``commit``
(the statement that caused records is acknowledged only once they are
stored, and no frame leaves before the records decided ahead of it), frames
are handed to subscribers without blocking by one delivery task (FIFO, off
the statement's critical path), sessions are closed on request, refusals are
told to the observer. The ``Node`` builds it; it imports no front.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import assert_never

import trio

from .hub import Broadcast, Change, Deliver, Disconnect, Effect, Frames, Hub, Persist, Refused
from .observe import NULL_OBSERVER, Observer
from .store import Store

__all__ = ["Engine"]


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
        #: Deferred effects with the perf_counter time of the apply() that produced them.
        self._outgoing: deque[tuple[Deliver | Disconnect, float]] = deque()
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
        durable = False
        for effect in effects:
            match effect:
                case Deliver() | Disconnect():
                    if durable:  # a frame never leaves before the records decided ahead of it are stored
                        await self.store.commit(changes)
                        changes, durable = [], False
                    if self._deferring:
                        self._outgoing.append((effect, published))
                        self._wake.set()
                    else:
                        self._deliver(effect)
                case Persist(records):
                    changes.extend(records)
                    durable = True
                case Broadcast(events):
                    changes.extend(events)
                case Refused(limit):
                    self.observer.limit_hit(limit)
                case _:
                    assert_never(effect)
        if changes:
            # records: acknowledged only once the store has them (and the changes before them, in order);
            # a clustered store queues events alone without waiting, unless Redis is far behind
            await self.store.commit(changes)

    def _deliver(self, effect: Deliver | Disconnect) -> None:
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
        else:  # pragma: no cover - the Effect union is closed
            raise TypeError(f"unknown effect {effect!r}")

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
