"""The engine: owns the hub and the store, and applies the hub's effects.

Every front-end (MySQL, browsers) calls the hub through here so that effects
are applied in one place and in order: records are stored before the
statement that caused them is acknowledged, frames are handed to subscribers
without blocking, sessions are closed on request. Runs in the trio thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from .hub import Deliver, Disconnect, Effect, Hub, Persist
from .store import Store

__all__ = ["Engine"]


class Engine:
    def __init__(self, hub: Hub, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.store = store
        self.clock = clock
        self.started = clock()
        self.delivered = 0

    def now(self) -> int:
        return int(self.clock())

    async def apply(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if type(effect) is Deliver:
                frame = effect.frame
                for target in effect.targets:
                    target.send(frame)
                self.delivered += len(effect.targets)
            elif type(effect) is Persist:
                await self.store.write(effect.records)
            elif type(effect) is Disconnect:
                for target in effect.targets:
                    target.close(effect.reason)
            else:  # pragma: no cover - the Effect union is closed
                raise TypeError(f"unknown effect {effect!r}")
