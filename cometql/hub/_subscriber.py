"""The hub's view of one browser session.

The browser face (WebSocket, long-poll) implements this protocol; the hub only
reads the attributes and keeps references. It never calls ``send`` itself: the
engine does that when it applies a ``Deliver`` effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ._frames import NO_CAPS

__all__ = ["ConnInfo", "ListSubscriber", "Subscriber", "all_but"]


@dataclass(slots=True)
class ConnInfo:
    """What ``users_in_pipes`` reports about a session besides its user id."""

    uuid: str = ""
    user_agent: str = ""
    ip: str = ""
    origin: str = ""
    language: str = ""


class Subscriber(Protocol):
    conn_id: int
    dev_id: int
    user_id: int  # 0 while anonymous
    info: ConnInfo

    @property
    def caps(self) -> frozenset[str]:
        """What the session announced it understands (``NO_CAPS`` for CppComet's library): with any
        capability it gets the capable form of a message (``Frames``), without any CppComet's frame."""

    def send(self, frame: bytes) -> None:
        """Queue a frame without blocking (the transport enforces its own bound)."""

    def close(self, reason: str) -> None:
        """Ask the transport to end the session (non-blocking)."""


def all_but(subs: dict[int, Subscriber] | None, skip: int | None) -> tuple[Subscriber, ...]:
    """The subscribers of an index (conn_id -> subscriber) but the session ``skip``."""
    if not subs:
        return ()
    return tuple(subs.values()) if skip is None else tuple(s for cid, s in subs.items() if cid != skip)


@dataclass(eq=False)
class ListSubscriber:
    """A subscriber that records frames in a list: for tests and tools, not for I/O."""

    conn_id: int
    dev_id: int = 0
    user_id: int = 0
    info: ConnInfo = field(default_factory=ConnInfo)
    frames: list[bytes] = field(default_factory=list)
    closed: str | None = None
    caps: frozenset[str] = NO_CAPS

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close(self, reason: str) -> None:
        self.closed = reason
