"""Where a channel's stream is, as a session with the ``offset`` capability is told (``position`` frames).

Split from ``_hub`` for size; reads only. See docs/delivery.md, "Channel recovery".
"""

from __future__ import annotations

from collections.abc import Iterable

from . import _frames
from ._effects import Deliver, Effect
from ._state import DurableState, Position
from ._subscriber import Subscriber
from .records import AppendHistory

__all__ = ["Echo", "position_frames"]

#: A message this node stored in a channel's history and has not fanned out yet (a cluster fans out
#: when the bus entry is read back): the record as stored, the session to skip, the frame's user_id.
Echo = tuple[AppendHistory, int | None, int | None]


def fanned_out(state: DurableState, echoes: Iterable[Echo], dev_id: int, channel: str) -> Position | None:
    """The channel's position as far as this node has fanned it out: its own messages waiting for the
    bus entry are in memory already, but a new subscriber gets them live, so its position is before."""
    pos = state.position(dev_id, channel)
    for rec, _, _ in echoes:
        if (pos is not None and rec.dev_id == dev_id and rec.channel == channel and rec.epoch == pos[0]
                and rec.entry.offset <= pos[1]):
            pos = (pos[0], rec.entry.offset - 1)
    return pos


def position_frames(state: DurableState, echoes: Iterable[Echo], sub: Subscriber, channels: Iterable[str],
                    now: int) -> list[Effect]:
    """A ``position`` frame for each of ``channels`` that keeps history (just joined by ``sub``)."""
    effects: list[Effect] = []
    echoes = list(echoes)
    for channel in channels:
        pos = fanned_out(state, echoes, sub.dev_id, channel)
        if pos is not None or state.history_keep(sub.dev_id, channel):
            epoch, offset = pos or ("", 0)
            frame = _frames.position_frame("position", channel, epoch, offset, True, now)
            effects.append(Deliver((sub,), frame))
    return effects
