"""Per-channel traffic counters for ``stats_history``: messages published to a channel, frames delivered.

``Hub.publish`` counts into ``Hub.traffic``; the node's sampler takes (and
resets) the counts at each sample. A node that does not sample gets
``NoTraffic``, which keeps nothing (so no memory grows with channel names).
"""

from __future__ import annotations

__all__ = ["Counts", "NoTraffic", "Traffic"]

#: (dev_id, channel) -> (messages published, frames of them delivered) over one sampling interval.
Counts = dict[tuple[int, str], tuple[int, int]]


class Traffic:
    """Messages published to and delivered from each channel since the last ``take``."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[tuple[int, str], list[int]] = {}

    def count(self, dev_id: int, channel: str, published: int, delivered: int) -> None:
        counts = self._counts.get((dev_id, channel))
        if counts is None:
            self._counts[(dev_id, channel)] = [int(published), delivered]  # a bool ("published here") is 0 or 1
        else:
            counts[0] += published
            counts[1] += delivered

    def take(self) -> Counts:
        """The counts so far; counting starts again from zero."""
        counts, self._counts = self._counts, {}
        return {key: (p, d) for key, (p, d) in counts.items()}


class NoTraffic(Traffic):
    """Counts nothing: for a hub whose node does not sample (``[stats] interval = 0``)."""

    __slots__ = ()

    def count(self, dev_id: int, channel: str, published: int, delivered: int) -> None:
        pass
