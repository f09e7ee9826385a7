"""What the I/O layer must do after a hub call.

Hub methods are synchronous and never touch sockets or disks; they return a
list of these effects, which the engine applies in order (await the store for
``Persist``, hand bytes to subscribers for ``Deliver``, close for ``Disconnect``,
ship ``Broadcast`` to the other nodes of a cluster, tell the observer about
``Refused`` requests, read a page of a user's queue for ``LoadQueue``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._frames import Frames
    from ._subscriber import Subscriber
    from .events import ClusterEvent
    from .records import Record

__all__ = ["Broadcast", "Deliver", "Disconnect", "Effect", "LoadQueue", "Persist", "Refused"]


@dataclass(frozen=True, slots=True)
class Deliver:
    """Send one message to every target, encoded once per form whatever the fan-out.

    ``frame`` is the bytes every target gets, or, for a message whose form depends on
    the session's capabilities, a ``Frames``: each target gets ``frame.form(target.caps)``.
    """

    targets: tuple[Subscriber, ...]
    frame: bytes | Frames

    def frame_for(self, target: Subscriber) -> bytes:
        """The bytes ``target`` gets (the engine inlines this in its loop)."""
        frame = self.frame
        return frame if isinstance(frame, bytes) else frame.form(target.caps)


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


@dataclass(frozen=True, slots=True)
class LoadQueue:
    """Read up to ``limit`` queued messages of a user stored after position ``after`` (0: from the start),
    once ``drain``'s outboxes have sent what they hold, and hand them to ``hub.personal.page``."""

    dev_id: int
    user_id: int
    after: int
    limit: int
    drain: tuple[Subscriber, ...] = ()


Effect = Deliver | Persist | Disconnect | Broadcast | Refused | LoadQueue
