"""A browser session with a bounded outbox of numbered frames, for transports that need a task to send.

Long-poll sessions use it as it is; TLS WebSocket sessions (``_tls.py``)
subclass it, with a writer task that sends and drops frames. (Plain WebSocket
sessions write to their socket directly: ``_wsconn.py``.) Frames are numbered
as they are queued; a long-poll drops them only when the next poll
acknowledges their number — so a lost poll response loses nothing. The outbox is bounded in bytes; a session
that does not keep up is closed rather than allowed to grow memory.
"""

from __future__ import annotations

import itertools
from collections import deque

import trio

from ..hub import NO_CAPS, ConnInfo

__all__ = ["BrowserSession", "next_conn_id"]

#: One numbering for every kind of browser session: the hub keys sessions by it.
next_conn_id = itertools.count(1).__next__


class BrowserSession:
    __slots__ = ("conn_id", "dev_id", "user_id", "info", "transport", "_outbox", "_seq", "_queued_bytes",
                 "_wake", "closing", "max_queued_bytes", "idle_since", "dropped")

    caps = NO_CAPS  # CppComet's frames (no session announces capabilities yet: no slot, no memory)

    def __init__(self, dev_id: int, info: ConnInfo, *, transport: str, max_queued_bytes: int) -> None:
        self.conn_id = next_conn_id()
        self.dev_id = dev_id
        self.user_id = 0
        self.info = info
        self.transport = transport
        self._outbox: deque[tuple[int, bytes]] = deque()
        self._seq = 0
        self._queued_bytes = 0
        self._wake = trio.Event()
        self.closing: str | None = None
        self.max_queued_bytes = max_queued_bytes
        self.idle_since: float | None = None
        self.dropped = 0  # a slow consumer is closed with its outbox kept: nothing is discarded

    # ---- the Subscriber protocol (called by the engine, never blocks)

    def send(self, frame: bytes) -> None:
        if self.closing is not None:
            return
        self._seq += 1
        self._outbox.append((self._seq, frame))
        self._queued_bytes += len(frame)
        if self._queued_bytes > self.max_queued_bytes:
            self.close("slow consumer: send queue over its bound")
        self._wake.set()

    def close(self, reason: str) -> None:
        if self.closing is None:
            self.closing = reason
        self._wake.set()

    # ---- for the transports

    async def wait(self) -> None:
        """Until a frame is queued or the session is closing (returns at once if either holds)."""
        while not self._outbox and self.closing is None:
            if self._wake.is_set():
                self._wake = trio.Event()
            await self._wake.wait()

    def ack(self, cursor: int) -> None:
        """Drop every frame numbered up to ``cursor``."""
        out = self._outbox
        while out and out[0][0] <= cursor:
            self._queued_bytes -= len(out.popleft()[1])

    def pending(self) -> list[tuple[int, bytes]]:
        return list(self._outbox)

    def take_all(self) -> list[bytes]:
        frames = [f for _, f in self._outbox]
        self._outbox.clear()
        self._queued_bytes = 0
        return frames

    @property
    def cursor(self) -> int:
        return self._seq
