"""The canary: health that proves delivery, not just that the process answers.

A server can keep accepting publishes while its subscribers get nothing: a
store writer wedged on a lock, a cluster follower stuck on a dead Redis
connection after a failover, a delivery task that stopped. Peers have shipped
exactly that with a green health check. So every ``interval`` seconds the
canary sends a probe the way a message goes:

1. through the store's commit path (``Store.probe``): on SQLite an empty
   transaction that must get the write lock; in a cluster a bus entry that
   Redis must take,
2. in a cluster, back out of the bus: this node's follower must read that very
   entry (``Cluster.own_last_id``), as it reads every other node's messages,
3. through the engine's delivery queue (``Engine.probe``), behind every frame
   handed out before it, to this node's sessions.

The probe is healthy when all three finish within ``timeout``. ``/health`` and
the ``cometql_canary_*`` metrics report the last result; ``healthy`` also turns
false when no probe has finished for ``interval + timeout`` (a probe that
hangs is a failure, not a missing figure).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from .cluster import Cluster
from .engine import Engine
from .errors import StoreError
from .store import Store

__all__ = ["Canary", "CanaryReport"]

log = logging.getLogger("cometql.canary")


def _entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class CanaryReport:
    """What ``/health`` and the metrics say about delivery."""

    enabled: bool
    healthy: bool
    #: Seconds the last successful probe took end to end (None before the first).
    seconds: float | None
    #: Why the last probe failed ("" when it passed).
    problem: str
    probes: int
    failures: int


class Canary:
    def __init__(self, engine: Engine, store: Store, cluster: Cluster | None, *, interval: float,
                 timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.store = store
        self.cluster = cluster
        self.interval = interval
        self.timeout = timeout
        self._clock = clock
        self._seconds: float | None = None
        self._problem = ""  # why the last probe failed; "" once one passed (or before the first ends)
        self._passed_at: float | None = None
        self._started = clock()
        self.probes = 0
        self.failures = 0

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def report(self) -> CanaryReport:
        if not self.enabled:
            return CanaryReport(False, True, None, "", 0, 0)
        now = self._clock()
        grace = self.interval + self.timeout
        if self._problem:
            problem = self._problem
        elif self._passed_at is None:  # the first probe is on its way: healthy until it is overdue
            problem = "" if now - self._started <= grace else "no probe has finished yet"
        elif now - self._passed_at > grace:
            problem = f"no probe has passed for {now - self._passed_at:.0f} s"
        else:
            problem = ""
        return CanaryReport(True, not problem, self._seconds, problem, self.probes, self.failures)

    async def run(self) -> None:
        """Probe every ``interval`` seconds for the server's lifetime (nothing when disabled)."""
        if not self.enabled:
            return
        while True:
            await self.probe_once()
            await trio.sleep(self.interval)

    async def probe_once(self) -> bool:
        """One probe; True if it passed within ``timeout``."""
        start = time.perf_counter()
        self.probes += 1
        problem = ""
        with trio.move_on_after(self.timeout) as scope:
            try:
                problem = await self._probe()
            except StoreError as exc:
                problem = f"the store does not take writes: {exc}"
        if scope.cancelled_caught:
            problem = f"a probe did not go round within {self.timeout:g} s"
        if problem:
            if not self._problem:
                log.error("delivery canary failing: %s", problem)
            self.failures += 1
            self._problem = problem
            return False
        if self._problem:
            log.warning("delivery canary passing again")
        self._problem = ""
        self._seconds = time.perf_counter() - start
        self._passed_at = self._clock()
        return True

    async def _probe(self) -> str:
        entry = await self.store.probe()
        cluster = self.cluster
        if cluster is not None and entry is not None:
            wanted = _entry_key(entry)
            while _entry_key(cluster.own_last_id) < wanted:  # the follower reads the bus in order
                if not cluster.connected:
                    return "this node's follower has lost the cluster bus"
                await trio.sleep(0.01)
        reached = trio.Event()
        self.engine.probe(reached.set)
        await reached.wait()
        return ""
