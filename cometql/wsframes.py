"""RFC 6455 framing for the server side, sans-IO.

Server frames are unmasked, so one publish encodes to the same bytes for every
subscriber: ``text_frame`` keeps the last encoding and the fan-out loop reuses
it. ``FrameReader`` turns received bytes into complete messages and control
frames, and raises ``WsProtocolError`` with the close code to send for bad
input (unmasked or oversized frames, bad UTF-8, bad opcodes).
"""

from __future__ import annotations

import struct

__all__ = [
    "CLOSE",
    "PING",
    "PONG",
    "TEXT",
    "FrameReader",
    "WsProtocolError",
    "close_frame",
    "encode",
    "text_frame",
]

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")


class WsProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def encode(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return _LEN16.pack(0x80 | opcode, 126, n) + payload
    return _LEN64.pack(0x80 | opcode, 127, n) + payload


_last: tuple[bytes, bytes] = (b"", encode(TEXT, b""))


def text_frame(payload: bytes) -> bytes:
    """The text frame for ``payload``; encoded once per distinct payload in a row (the fan-out case)."""
    global _last
    last_payload, last_frame = _last
    if payload is last_payload:
        return last_frame
    frame = encode(TEXT, payload)
    _last = (payload, frame)
    return frame


def close_frame(code: int, reason: str = "") -> bytes:
    return encode(CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:120])


def frame_header(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(header size before any mask, payload length) of the frame at ``pos``; None if the header is incomplete.

    Shared by the server's reader and the benchmark's client reader.
    """
    end = len(buf)
    if end - pos < 2:
        return None
    length = buf[pos + 1] & 0x7F
    if length == 126:
        if end - pos < 4:
            return None
        return 4, int.from_bytes(buf[pos + 2 : pos + 4], "big")
    if length == 127:
        if end - pos < 10:
            return None
        return 10, int.from_bytes(buf[pos + 2 : pos + 10], "big")
    return 2, length


def _unmask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return data
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")


class FrameReader:
    """Incremental parser of client frames. ``feed`` returns (opcode, payload) items:
    whole TEXT messages (fragments reassembled, UTF-8 checked) and control frames."""

    __slots__ = ("_buf", "_parts", "max_message")

    def __init__(self, max_message: int) -> None:
        self._buf = b""
        self._parts: list[bytes] | None = None
        self.max_message = max_message

    @property
    def idle(self) -> bool:
        """No partial frame or message held (the reader can be dropped)."""
        return not self._buf and self._parts is None

    def feed(self, data: bytes | bytearray) -> list[tuple[int, bytes]]:
        """The frames ``data`` completes (a trio stream may hand a bytearray; a socket gives bytes, not copied)."""
        buf = self._buf + data if self._buf else bytes(data)
        out: list[tuple[int, bytes]] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b0 & 0x70:
                raise WsProtocolError(1002, "reserved bits set")
            if not b1 & 0x80:
                raise WsProtocolError(1002, "client frames must be masked")
            opcode, fin = b0 & 0x0F, b0 & 0x80
            header = frame_header(buf, pos)
            if header is None:
                break
            head, length = header
            if length > self.max_message:
                raise WsProtocolError(1009, f"message over {self.max_message} bytes")
            total = head + 4 + length
            if end - pos < total:
                break
            mask = buf[pos + head : pos + head + 4]
            payload = _unmask(buf[pos + head + 4 : pos + total], mask)
            pos += total
            out.extend(self._frame(opcode, bool(fin), payload))
        self._buf = buf[pos:]
        return out

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> list[tuple[int, bytes]]:
        if opcode >= 0x8:
            if not fin or len(payload) > 125:
                raise WsProtocolError(1002, "bad control frame")
            return [(opcode, payload)]
        if opcode in (TEXT, BINARY):
            if self._parts is not None:
                raise WsProtocolError(1002, "new message inside a fragmented one")
            parts = [payload]
        elif opcode == CONT:
            if self._parts is None:
                raise WsProtocolError(1002, "continuation without a message")
            parts = self._parts
            parts.append(payload)
            if sum(map(len, parts)) > self.max_message:
                raise WsProtocolError(1009, f"message over {self.max_message} bytes")
        else:
            raise WsProtocolError(1002, f"unknown opcode {opcode}")
        if not fin:
            self._parts = parts
            return []
        self._parts = None
        message = b"".join(parts) if len(parts) > 1 else parts[0]
        try:
            message.decode("utf-8")
        except UnicodeDecodeError:
            raise WsProtocolError(1007, "message is not valid UTF-8") from None
        return [(TEXT, message)]
