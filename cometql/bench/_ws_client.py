"""A lean asyncio WebSocket client for load generation: CppComet's URL, raw frames.

One ``asyncio.Protocol`` per connection and no task once it is open, so one
client process can hold thousands of sessions without becoming the bottleneck.
Requests and frames are pre-built bytes: the mask key is all zeros (legal: the
server unmasks by XOR), so a client frame is a header plus the payload as is.
Parsing is minimal: the first text frame after the handshake is serverInfo,
later ones are counted, and only when asked is the ``"data":"<ns>"`` send
timestamp read out of a payload.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from array import array
from collections.abc import Iterator

from ..wsframes import frame_header

__all__ = ["LIBRARY_CAPS", "LINGER_RESET", "Tally", "WsClient", "client_frame", "complete_frames", "handshake_request",
           "open_socket"]

_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
LINGER_RESET = struct.pack("ii", 1, 0)
_DATA = b'"data":"'


#: What ``/cometql.js`` announces: the load clients connect as our library does, with the reliable-delivery
#: defaults on (acknowledgements, offsets, heartbeats), so the figures hold for them.
LIBRARY_CAPS = "ack,offset,hb"


def complete_frames(buf: bytearray) -> Iterator[tuple[int, bytes, int]]:
    """The whole server frames at the start of ``buf``: (opcode, payload, offset after it); the caller
    drops ``buf[:offset]`` when done (a partial frame stays for the next read)."""
    pos, size = 0, len(buf)
    while size - pos >= 2:
        header = frame_header(buf, pos)
        if header is None:
            return
        head, length = header
        end = pos + head + length
        if end > size:
            return
        yield buf[pos] & 0x0F, bytes(buf[pos + head:end]), end
        pos = end


def handshake_request(host: str, port: int, dev_id: int, uuid: str, user_id: str = "0",
                      session: str = "bench", caps: str = LIBRARY_CAPS) -> bytes:
    """The HTTP upgrade request the JS library sends (URL parameters in the path, no "?"); ``caps=""``
    gives CppComet's own request."""
    path = f"/ws/sesion={session}&myid={user_id}&devid={dev_id}&v=4.08&uuid={uuid}&api=js"
    if caps:
        path += f"&caps={caps}"
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "User-Agent: cometql-bench\r\n\r\n").encode()


def client_frame(payload: str | bytes, opcode: int = 0x1) -> bytes:
    """A masked, final client frame with a zero mask key (so the payload goes out unchanged)."""
    if isinstance(payload, str):
        payload = payload.encode()
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    elif size < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + payload




def open_socket(source: str | None) -> socket.socket:
    """A non-blocking TCP socket, bound to ``source`` (port chosen at connect, so the
    4-tuple, not the port, must be unique) and set to reset on close: a benchmark
    that opens tens of thousands of sessions must not leave them in TIME_WAIT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    if source:
        sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
    return sock


class Tally:
    """Matching frames received by all of one process's clients: one int to poll while waiting."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames = 0


class WsClient(asyncio.Protocol):
    """One browser-like session. Counts frames that contain ``match``.

    After ``reset``: ``count`` matching frames, ``first_ns``/``last_ns`` the
    CLOCK_MONOTONIC times of the first and the latest, ``other`` for frames that
    did not match. With ``latencies`` set, each matching frame's ``data`` is read
    as the publisher's send time in ns and ``now - sent`` is appended there.
    """

    __slots__ = ("channel", "transport", "ready", "lost", "count", "other", "first_ns", "last_ns",
                 "match", "latencies", "tally", "_buf", "_upgraded", "_request")

    def __init__(self, request: bytes, channel: str, ready: asyncio.Future[None], tally: Tally) -> None:
        self.channel = channel
        self.tally = tally
        self.transport: asyncio.Transport | None = None
        self.ready = ready
        self.lost = False
        self.match = b'"pipe":"'
        self.latencies: array[int] | None = None
        self._buf = bytearray()
        self._upgraded = False
        self._request = request
        self.reset(self.match)

    def reset(self, match: bytes, latencies: array[int] | None = None) -> None:
        self.count = self.other = self.first_ns = self.last_ns = 0
        self.match = match
        self.latencies = latencies

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self._request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.transport = None
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before serverInfo: {exc}"))

    def send(self, frame: bytes) -> None:
        if self.transport is not None:
            self.transport.write(frame)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(bytes(buf[:end]).decode("latin-1")))
                self.close()
                return
            self._upgraded = True
            del buf[:end + 4]
        pos = 0
        for opcode, payload, end in complete_frames(buf):
            self._frame(opcode, payload)
            pos = end
        if pos:
            del buf[:pos]

    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x1 or opcode == 0x2:
            if not self.ready.done():
                if b'"serverInfo"' in payload:
                    self.ready.set_result(None)
                else:
                    self.ready.set_exception(ConnectionError(f"first frame is not serverInfo: {payload[:200]!r}"))
                return
            now = time.monotonic_ns()
            if self.match in payload:
                self.count += 1
                self.tally.frames += 1
                self.last_ns = now
                if not self.first_ns:
                    self.first_ns = now
                if self.latencies is not None:
                    start = payload.find(_DATA) + len(_DATA)
                    self.latencies.append(now - int(payload[start:payload.index(b'"', start)]))
            else:
                self.other += 1
        elif opcode == 0x9:
            self.send(client_frame(payload, opcode=0xA))
        elif opcode == 0x8:
            self.close()
