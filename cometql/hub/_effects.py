"""What the I/O layer must do after a hub call.

Hub methods are synchronous and never touch sockets or disks; they return a
list of these effects, which the engine applies in order (await the store for
``Persist``, hand bytes to subscribers for ``Deliver``, close for ``Disconnect``,
ship ``Broadcast`` to the other nodes of a cluster, tell the observer about
``Refused`` requests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._subscriber import Subscriber
    from .events import ClusterEvent
    from .records import Record

__all__ = ["Broadcast", "Deliver", "Disconnect", "Effect", "Persist", "Refused"]


@dataclass(frozen=True, slots=True)
class Deliver:
    """Send the same pre-encoded frame to every target (encoded once, whatever the fan-out)."""

    targets: tuple[Subscriber, ...]
    frame: bytes


@dataclass(frozen=True, slots=True)
class Persist:
    """Durable records; the statement that caused them is acknowledged only after they are stored."""

    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close these browser sessions (auth removed, token revoked, too many sessions)."""

    targets: tuple[Subscriber, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Tell the other nodes of a cluster (only a hub with a ``node_id`` returns these)."""

    events: tuple[ClusterEvent, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """A limit refused part of a request (the error frame saying so is a ``Deliver`` of its own).

    Counting refusals is the I/O layer's business; this says which limit, as data.
    """

    limit: str


Effect = Deliver | Persist | Disconnect | Broadcast | Refused
