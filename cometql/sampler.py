"""The sampler: writes ``stats_history`` every interval (a minute by default).

At each boundary ``at`` (a multiple of the interval in unix time, so every
node of a cluster agrees on it) the sampler

1. takes this node's traffic counters (``hub.traffic``) and shares them with the
   stats store (a single node keeps them; in a cluster they are summed in Redis);
2. claims the sample: only the one node that wins writes it;
3. the winner takes the census of presence from its hub (the hub sees every
   node's sessions), waits ``grace`` seconds in a cluster so that the other
   nodes' shares arrive, collects the summed traffic and appends the rows
   (``hub.sample_rows``): per dev the totals and the ``channels`` busiest;
4. drops rows older than ``keep_days``.

A failing store is logged and the sample skipped; sampling goes on. Tests
drive ``sample(at)`` directly, or run the loop with a one-second interval.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from .errors import StoreError
from .hub import Hub, StatsRow, sample_rows, take_census
from .store import StatsStore

__all__ = ["NO_SAMPLING", "Sampler", "Sampling"]

log = logging.getLogger("cometql.stats")


@dataclass(frozen=True, slots=True)
class Sampling:
    """``[stats]`` settings: seconds between samples (0: no sampling), days kept, channels per sample."""

    interval: int = 0
    keep_days: float = 7.0
    channels: int = 20
    #: Seconds the node writing a sample waits for the other nodes' traffic (0 without a cluster).
    grace: float = 0.0


NO_SAMPLING = Sampling()


class Sampler:
    def __init__(self, hub: Hub, stats: StatsStore, sampling: Sampling, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.stats = stats
        self.sampling = sampling
        self.clock = clock
        self.samples = 0  # written by this node
        self._last_devs: set[int] = set()

    async def run(self) -> None:
        """Sample at every boundary for the server's lifetime (returns at once when sampling is off)."""
        interval = self.sampling.interval
        if interval <= 0:
            return
        at = math.floor(self.clock() / interval) * interval
        while True:
            at += interval
            now = self.clock()
            if now >= at + interval:  # this process was paused or starved: skip the boundaries it missed
                at = math.floor(now / interval) * interval
            await trio.sleep(max(0.0, at - now))
            await self.sample(at)

    async def sample(self, at: int) -> list[StatsRow]:
        """The sample at boundary ``at``: the rows this node wrote (none if another node writes it)."""
        hub, stats, sampling = self.hub, self.stats, self.sampling
        try:
            await stats.share_traffic(at, hub.traffic.take())
            if not await stats.claim_sample(at):
                return []
            census = take_census(hub, sampling.channels)
            if sampling.grace > 0:
                await trio.sleep(sampling.grace)
            traffic = await stats.collect_traffic(at)
            rows = sample_rows(at, census, traffic, sampling.channels, also=self._last_devs)
            await stats.append_stats(rows)
            self._last_devs = {r.dev_id for r in rows if r.channel == "" and (r.sessions or r.published or r.delivered)}
            self.samples += 1
            if sampling.keep_days > 0:
                await stats.prune_stats(at - int(sampling.keep_days * 86400))
        except StoreError as exc:
            log.warning("stats_history: the sample at %d was not written: %s", at, exc)
            return []
        return rows
