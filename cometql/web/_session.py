"""Browser sessions: the ``Session`` protocol of every transport, and the session whose frames wait for a task.

``Session`` is what the front and the hub see of a browser session, whatever
carries it: a plain WebSocket (``_wsconn.WsSession``, writing to its socket
directly), a TLS WebSocket (``_tls.TlsWsSession``) or long-poll
(``BrowserSession`` here). All of them queue what they cannot deliver at once
in one kind of bounded ``Outbox`` (``_outbox.py``), which also holds the
slow-consumer rule.

``BrowserSession`` is for transports that need a task to send: every frame is
queued, numbered, and the transport's task waits for it (``wait``). A
long-poll drops frames only when the next poll acknowledges their number, so
a lost poll response loses nothing; the TLS writer takes them all at once. A
session over its bound is closed with its outbox kept, so the last response
still carries what was queued.
"""

from __future__ import annotations

import itertools
from typing import Protocol

import trio

from ..hub import NO_CAPS, ConnInfo, Subscriber
from ._outbox import SLOW_CONSUMER, Entry, Outbox

__all__ = ["BrowserSession", "Session", "next_conn_id"]

#: One numbering for every kind of browser session: the hub keys sessions by it.
next_conn_id = itertools.count(1).__next__


class Session(Subscriber, Protocol):
    """A browser session of any transport, as the front accounts for it."""

    #: "websocket" or "longpoll" (metrics label).
    transport: str
    #: Why the server is closing it (None while open or when the browser left).
    closing: str | None
    #: Frames discarded when it was closed as a slow consumer.
    dropped: int
    #: The capabilities it announced (settable: the front sets them from its parameters).
    caps: frozenset[str]


class BrowserSession:
    """A session whose frames wait in its outbox until its transport's task takes them."""

    __slots__ = ("conn_id", "dev_id", "user_id", "info", "transport", "outbox", "_wake", "closing",
                 "idle_since", "dropped", "caps")


    def __init__(self, dev_id: int, info: ConnInfo, *, transport: str, max_queued_bytes: int) -> None:
        self.conn_id = next_conn_id()
        self.dev_id = dev_id
        self.user_id = 0
        self.info = info
        self.transport = transport
        self.outbox = Outbox(max_queued_bytes)
        self._wake = trio.Event()
        self.closing: str | None = None
        self.idle_since: float | None = None
        self.dropped = 0  # a slow consumer is closed with its outbox kept: nothing is discarded
        self.caps = NO_CAPS  # what the browser announced, set from its parameters before it opens

    # ---- the Subscriber protocol (called by the engine, never blocks)

    def send(self, frame: bytes) -> None:
        if self.closing is None:
            self._queue(frame)

    @property
    def queued_bytes(self) -> int:
        """How many bytes wait in the outbox (the engine paces queue pages by it)."""
        return self.outbox.nbytes

    def close(self, reason: str) -> None:
        if self.closing is None:
            self.closing = reason
        self._wake.set()

    def _queue(self, data: bytes, msg_id: str | None = None) -> None:
        """Queue ``data`` for the transport; over the bound the session is closed as a slow consumer."""
        if not self.outbox.push(data, msg_id):
            self.close(SLOW_CONSUMER)
        self._wake.set()

    # ---- for the transports

    async def wait(self) -> None:
        """Until a frame is queued or the session is closing (returns at once if either holds)."""
        while not self.outbox and self.closing is None:
            if self._wake.is_set():
                self._wake = trio.Event()
            await self._wake.wait()

    def ack(self, cursor: int) -> None:
        """Drop every frame numbered up to ``cursor``."""
        self.outbox.ack(cursor)

    def pending(self) -> list[Entry]:
        """The frames not yet acknowledged, oldest first."""
        return self.outbox.entries()

    @property
    def cursor(self) -> int:
        """The number of the last frame queued."""
        return self.outbox.cursor
