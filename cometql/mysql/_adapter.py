"""Run mysql-mimic's connection code on trio streams.

mysql-mimic expects asyncio's ``StreamReader``/``StreamWriter``; it only calls
``read(n)``, ``readexactly(n)``, ``write(data)`` and ``drain()`` on them. These
two small classes provide exactly that over one trio stream, so every MySQL
connection runs as a plain trio task in the server's nursery: no second event
loop, no thread, no hand-off per statement. The reader also bounds packet
sizes, so a client cannot make us buffer an unbounded payload.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import trio
from mysql_mimic.stream import ConnectionClosed

__all__ = ["PacketTooLarge", "TrioReader", "TrioWriter"]

_RECEIVE = 65536


class PacketTooLarge(ConnectionClosed):
    """A packet's header announced more than ``max_payload`` bytes; none of its payload was read."""


class TrioReader:
    __slots__ = ("_stream", "_buf", "_pos", "max_payload")

    def __init__(self, stream: trio.abc.ReceiveStream, *, max_payload: int) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._pos = 0
        self.max_payload = max_payload

    async def _fill(self, n: int) -> bool:
        """Make at least ``n`` unread bytes available; False on EOF."""
        while len(self._buf) - self._pos < n:
            if self._pos:
                del self._buf[: self._pos]
                self._pos = 0
            try:
                data = await self._stream.receive_some(_RECEIVE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return False
            if not data:
                return False
            self._buf += data
        return True

    def _take(self, n: int) -> bytes:
        start = self._pos
        self._pos = start + n
        return bytes(self._buf[start : start + n])

    async def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or b"" at end of stream (mysql-mimic reads 4-byte headers this way)."""
        if not await self._fill(n):
            return b""
        return self._take(n)

    def switch(self, stream: trio.abc.ReceiveStream) -> bytes:
        """Read from ``stream`` from now on (TLS upgrade); returns the bytes read but not yet consumed."""
        unread = bytes(self._buf[self._pos :])
        self._buf.clear()
        self._pos = 0
        self._stream = stream
        return unread

    async def readexactly(self, n: int) -> bytes:
        if n > self.max_payload:
            raise PacketTooLarge(f"packet of {n} bytes is over the {self.max_payload}-byte limit")
        if not await self._fill(n):
            raise ConnectionClosed("connection closed mid-packet")
        return self._take(n)


def _nothing() -> None:
    pass


class TrioWriter:
    """mysql-mimic's writer over a trio stream.

    On a plain socket an answer is written with one non-blocking ``send``, with
    no checkpoint when the kernel takes it all (trio's ``send_all`` is used for
    the rest, and over TLS), and ``after_send`` is called right then: the node
    hands out the deliveries the statement decided (``Engine.answered``) in the
    same task step, so the OK goes first and the first frame right after it.
    """

    __slots__ = ("_stream", "_out", "_socket", "after_send")

    def __init__(self, stream: trio.abc.SendStream, after_send: Callable[[], None] = _nothing) -> None:
        self._stream = stream
        self._out: list[bytes] = []
        self._socket = stream.socket if isinstance(stream, trio.SocketStream) else None
        self.after_send = after_send

    def write(self, data: bytes | bytearray) -> None:
        self._out.append(data)  # type: ignore[arg-type]  # mysql-mimic hands over a fresh buffer

    def switch(self, stream: trio.abc.SendStream) -> None:
        """Write to ``stream`` from now on (TLS upgrade)."""
        self._stream = stream
        self._socket = stream.socket if isinstance(stream, trio.SocketStream) else None

    async def drain(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        fd = -1 if self._socket is None else self._socket.fileno()  # -1 once the stream is closed
        if fd >= 0:
            try:
                sent = os.write(fd, data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                raise ConnectionClosed("peer went away") from exc
            if sent == len(data):
                self.after_send()
                return
            data = data[sent:]
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed("peer went away") from exc
        self.after_send()
