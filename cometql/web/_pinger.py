"""Dead connections: one task pings every WebSocket session and closes the ones that stay silent.

Why: a peer that vanished without a FIN or RST (a mobile network gone, a NAT
box that dropped its state, a laptop lid closed) leaves its socket open for
as long as TCP lets it, often forever on an idle connection: the user stays
"online" and personal messages go to a socket nobody reads instead of the
durable queue. RFC 6455 pings are answered by every browser by itself, so
pinging also covers CppComet's unmodified library.

Cost at 100,000 sessions, the design constraint: no task, timer or object per
session or per control frame. A session carries two slots: ``pinged_at``, when
its last ping left (a float shared by every session visited in the same slice,
so no float per session), and ``heard``, whether any byte arrived since (set by
the session's reader: a pong, a command, anything). One task walks all
sessions once per pass (``min(ping_interval, ping_timeout) / 5``), in slices of
``SLICE`` sessions spread over the pass, so the event loop is never held for
long. At each visit (``visit``):

- heard, and ``ping_interval`` since its last ping: ping it (sessions with the
  ``hb`` capability get a heartbeat text frame in the same write, since a page
  cannot see protocol pings), ``pinged_at = now``, ``heard = False``;
- not heard, and ``ping_timeout`` since that ping: ``abort`` it. It then leaves
  the hub like any closed session (offline event, ``users_time``, later
  personal messages queued).

A dead peer is therefore noticed within ``ping_interval + ping_timeout`` plus
at most two passes (35 s + 4 s with the defaults). Pinging every session
whether or not it spoke lately costs one two-byte send per session per
interval (4,000/s at 100,000 sessions) and keeps the heartbeat of ``hb``
sessions regular even when the page itself is busy sending.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import trio

from ..hub import sys_frame
from ..wsframes import PING, TEXT, encode

__all__ = ["PING_FRAME", "SLICE", "Pingable", "Pinger", "heartbeat_frame", "visit"]

#: An empty ping (2 bytes): the same bytes for every session.
PING_FRAME = encode(PING, b"")
#: Sessions visited per slice: small enough that a slice holds the event loop only a few milliseconds.
SLICE = 2048
#: Why a session closed by the pinger ended (logs, metrics).
NO_ANSWER = "no answer to ping"


class Pingable(Protocol):
    """A WebSocket session as the pinger sees it (plain ``WsSession`` or ``TlsWsSession``)."""

    pinged_at: float
    heard: bool
    caps: frozenset[str]
    closing: str | None

    def ping(self, extra: bytes) -> None:
        """Send a ping frame, followed by ``extra`` (wire bytes: the heartbeat frame, or b"")."""
        ...

    def abort(self, reason: str) -> None:
        """End the session now, whatever it still has to send (its peer is taken for dead)."""
        ...


def heartbeat_frame(now: int) -> bytes:
    """The wire bytes of the heartbeat text frame for ``hb`` sessions: ``{"event":"heartbeat","pipe":"sys"}``
    with CppComet's envelope (``data`` empty, the server's time). Never sent to a session without ``hb``."""
    return encode(TEXT, sys_frame("heartbeat", "", now))


def visit(session: Pingable, now: float, interval: float, timeout: float, heartbeat: bytes) -> bool:
    """Apply the rules above to one session; True if it was aborted."""
    elapsed = now - session.pinged_at
    if session.heard:
        if elapsed >= interval:
            session.ping(heartbeat if "hb" in session.caps else b"")
            session.pinged_at = now
            session.heard = False
    elif elapsed >= timeout:
        session.abort(NO_ANSWER)
        return True
    return False


class Pinger:
    """The one task that pings every WebSocket session (``sources()`` lists them at each pass)."""

    def __init__(self, interval: float, timeout: float, sources: Callable[[], Sequence[Pingable]],
                 epoch: Callable[[], int]) -> None:
        self.interval = interval
        self.timeout = timeout
        self._sources = sources
        self._epoch = epoch
        #: Sessions aborted for not answering (for tests and logs).
        self.aborted = 0

    @property
    def pass_seconds(self) -> float:
        """How long one walk over every session takes: the slack on top of interval + timeout."""
        return max(0.05, min(self.interval, self.timeout) / 5)

    async def run(self) -> None:
        if self.interval <= 0:
            return
        while True:
            await self.sweep()

    async def sweep(self) -> None:
        """One pass over every session, slice by slice, spread over ``pass_seconds``."""
        sessions = self._sources()
        slices = max(1, math.ceil(len(sessions) / SLICE))
        pause = self.pass_seconds / slices
        for start in range(0, slices * SLICE, SLICE):
            now = trio.current_time()  # one float for the whole slice: shared by every pinged_at set now
            heartbeat = heartbeat_frame(self._epoch())
            for session in sessions[start:start + SLICE]:
                if session.closing is None and visit(session, now, self.interval, self.timeout, heartbeat):
                    self.aborted += 1
            await trio.sleep(pause)
