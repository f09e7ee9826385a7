"""A session's outbox: numbered frames its transport has not delivered yet, bounded in bytes.

One class for every browser transport. Entries are ``(seq, frame, msg_id)``:
``seq`` numbers them in the order they were queued (long-poll clients
acknowledge by it), ``msg_id`` is the id of the message a frame carries, for
acknowledgements and requeueing (None for frames that carry none: today every
frame). What ``frame`` is depends on the transport: a WebSocket queues wire
bytes (a plain socket: what the kernel would not take, the first entry cut
where a send stopped; TLS: every frame, for its writer task), long-poll
queues the JSON frames it answers a poll with. Entries leave when the
transport is done with them: ``consume`` (bytes the socket took), ``ack``
(a poll's cursor) or ``take`` (a writer took them all).

The slow-consumer policy lives here, once: ``push`` answers False when the
queued bytes exceed the bound, and the session then closes with
``SLOW_CONSUMER`` instead of growing memory. What happens to the entries then
is the transport's: a plain WebSocket shuts its socket and discards them
(``discard``); long-poll and TLS keep them for the last response.
"""

from __future__ import annotations

import itertools
from collections import deque

__all__ = ["IOV_MAX", "SLOW_CONSUMER", "Entry", "Outbox"]

#: Buffers one ``sendmsg`` takes at most (Linux's UIO_MAXIOV).
IOV_MAX = 1024

#: The reason a session is closed with when its outbox goes over its bound.
SLOW_CONSUMER = "slow consumer: send queue over its bound"

#: (sequence number, frame bytes, id of the message it carries or None)
Entry = tuple[int, "bytes | memoryview", "str | None"]


class Outbox:
    """Frames waiting for a transport: numbered from 1, bounded by ``limit`` bytes."""

    __slots__ = ("_entries", "_seq", "nbytes", "limit")

    def __init__(self, limit: int) -> None:
        self._entries: deque[Entry] = deque()
        self._seq = 0
        self.nbytes = 0
        self.limit = limit

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    @property
    def cursor(self) -> int:
        """The number of the last frame queued (0 before any)."""
        return self._seq

    def push(self, frame: bytes | memoryview, msg_id: str | None = None) -> bool:
        """Queue ``frame`` under the next number; False if the outbox is now over its bound (a slow consumer)."""
        self._seq += 1
        self._entries.append((self._seq, frame, msg_id))
        self.nbytes += len(frame)
        return self.nbytes <= self.limit

    # ---- what the transport delivered

    def ack(self, cursor: int) -> None:
        """Drop every entry numbered up to ``cursor`` (a long-poll acknowledged them)."""
        entries = self._entries
        while entries and entries[0][0] <= cursor:
            self.nbytes -= len(entries.popleft()[1])

    def consume(self, sent: int) -> None:
        """Drop the first ``sent`` bytes (a socket took them); an entry taken in part keeps its rest."""
        entries = self._entries
        while sent:
            seq, frame, msg_id = entries[0]
            if sent < len(frame):
                entries[0] = (seq, memoryview(frame)[sent:], msg_id)
                self.nbytes -= sent
                return
            entries.popleft()
            self.nbytes -= len(frame)
            sent -= len(frame)

    def head(self) -> bytes | memoryview:
        """The first entry's (remaining) bytes; the outbox must not be empty."""
        return self._entries[0][1]

    def chunks(self, limit: int = IOV_MAX) -> list[bytes | memoryview]:
        """The first ``limit`` entries' (remaining) bytes, oldest first: for one ``sendmsg`` of them all."""
        if len(self._entries) <= limit:
            return [entry[1] for entry in self._entries]
        return [entry[1] for entry in itertools.islice(self._entries, limit)]

    def entries(self) -> list[Entry]:
        """A copy of the entries, oldest first (they stay queued)."""
        return list(self._entries)

    def take(self) -> list[Entry]:
        """Every entry, oldest first; the outbox is empty afterwards (numbering goes on)."""
        taken = list(self._entries)
        self._entries.clear()
        self.nbytes = 0
        return taken

    def discard(self) -> int:
        """Drop every entry undelivered; returns how many there were."""
        count = len(self._entries)
        self._entries.clear()
        self.nbytes = 0
        return count
