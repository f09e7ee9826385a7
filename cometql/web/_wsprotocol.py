"""The server side of one WebSocket connection, sans-IO: bytes in -> events, frames out.

``WsConnection`` holds the protocol's rules in one place for every WebSocket
the browser port serves (plain ``ws://`` in the idle poller, ``wss://``, and
the admin feed); the transports only move bytes. It imports no trio and does
no I/O, as h11 and wsproto do:

- ``receive_data(data)`` parses client frames (``wsframes.FrameReader``) and
  returns events: ``TextMessage``, ``CloseRequested`` (the peer's close) or
  ``ProtocolError`` (the peer broke a rule; the close code to send is in it).
- Control frames are answered inline: a ping's pong, the echo of the peer's
  close and the close frame for a protocol error are queued as bytes, which
  the caller takes with ``data_to_send()`` right after ``receive_data`` and
  writes on the same path as its other frames. No task per control frame.
- ``send_text`` / ``send_close`` return the bytes of an outgoing frame.
  Text frames come from ``wsframes.text_frame``, so a fan-out encodes a
  publish once for every subscriber.

Rules: one close frame at most is ever produced; nothing but that is produced
after it. A peer's close is echoed with its code (1000 when it gave none or an
invalid one) and no reason, unless we had already sent ours. After the close
(either side's) or a protocol error, received bytes yield no more events.
A fresh connection and an open one with nothing half-received behave alike
(``idle``): the plain WebSocket session drops it between reads and keeps no
parser for an idle browser.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wsframes import CLOSE, PING, PONG, TEXT, FrameReader, WsProtocolError, close_frame, encode, text_frame

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CloseRequested",
    "ProtocolError",
    "TextMessage",
    "WsConnection",
    "WsEvent",
]

CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_POLICY = 1000, 1001, 1008

# states
OPEN, CLOSE_SENT, CLOSED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A complete text message (fragments reassembled, UTF-8 checked); ``data`` is its UTF-8 bytes."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseRequested:
    """The peer sent a close frame with ``code``; the echo (if one is due) waits in ``data_to_send``."""

    code: int


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The peer broke a framing rule; a close frame with ``code`` and ``reason`` waits in ``data_to_send``."""

    code: int
    reason: str


WsEvent = TextMessage | CloseRequested | ProtocolError


class WsConnection:
    """One server-side WebSocket after the handshake: parses what the client sends, builds what we send."""

    __slots__ = ("_reader", "_out", "_state", "max_message")

    def __init__(self, max_message: int) -> None:
        self._reader: FrameReader | None = None  # only while a frame or message is half-received
        self._out = b""
        self._state = OPEN
        self.max_message = max_message

    @property
    def idle(self) -> bool:
        """Open, nothing half-received, nothing to send: equivalent to a fresh connection."""
        return self._state == OPEN and self._reader is None and not self._out

    @property
    def close_sent(self) -> bool:
        """Our close frame was produced (by ``send_close`` or as an echo / protocol-error reply)."""
        return self._state != OPEN

    @property
    def closed(self) -> bool:
        """The peer's close arrived or it broke a rule: nothing more will be read."""
        return self._state == CLOSED

    # ---- receiving

    def receive_data(self, data: bytes | bytearray) -> list[WsEvent]:
        """The events ``data`` completes, in order; control replies are queued for ``data_to_send``."""
        if self._state == CLOSED:
            return []
        reader = self._reader
        if reader is None:
            reader = FrameReader(self.max_message)
        events: list[WsEvent] = []
        try:
            frames = reader.feed(data)
        except WsProtocolError as exc:
            self._reader = None
            self._fail(exc.code, exc.reason, events)
            return events
        self._reader = None if reader.idle else reader
        for opcode, payload in frames:
            if opcode == TEXT:
                if self._state == OPEN:
                    events.append(TextMessage(payload))
            elif opcode == PING:
                if self._state == OPEN:
                    self._out += encode(PONG, payload)
            elif opcode == CLOSE:
                self._peer_closed(payload, events)
                break
            # a PONG needs nothing
        return events

    def data_to_send(self) -> bytes:
        """Bytes that ``receive_data`` queued (pongs, the close echo or error close); empties the queue."""
        out, self._out = self._out, b""
        return out

    def _peer_closed(self, payload: bytes, events: list[WsEvent]) -> None:
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else CLOSE_NORMAL
        if not 1000 <= code < 5000:
            code = CLOSE_NORMAL
        if self._state == OPEN:
            self._out += close_frame(code)
        self._state = CLOSED
        self._reader = None
        events.append(CloseRequested(code))

    def _fail(self, code: int, reason: str, events: list[WsEvent]) -> None:
        if self._state == OPEN:
            self._out += close_frame(code, reason)
        self._state = CLOSED
        events.append(ProtocolError(code, reason))

    # ---- sending

    def send_text(self, payload: bytes) -> bytes:
        """The text frame for ``payload`` (the shared per-fan-out encoding); b"" once our close was sent."""
        return text_frame(payload) if self._state == OPEN else b""

    def send_close(self, code: int, reason: str = "") -> bytes:
        """Our close frame (the reason is cut to fit a control frame); b"" if a close was already produced."""
        if self._state != OPEN:
            return b""
        self._state = CLOSE_SENT
        return close_frame(code, reason)
