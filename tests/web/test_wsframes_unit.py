"""The server's WebSocket framing and send path, without a server.

Frames are encoded once per publish (the same bytes object for every
subscriber); a session whose socket will not take more is bounded: it is
closed, and its queue dropped, instead of growing.
"""

from __future__ import annotations

import os
import socket

import pytest
import trio

from cometql.hub import ConnInfo
from cometql.web._wsconn import WsSession
from cometql.wsframes import CLOSE, PING, TEXT, FrameReader, WsProtocolError, encode, text_frame


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + body


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_encode_lengths(size: int) -> None:
    frame = encode(TEXT, b"x" * size)
    assert frame[0] == 0x81
    reader_side = frame[2:] if size < 126 else frame[4:] if size < 65536 else frame[10:]
    assert reader_side == b"x" * size


def test_text_frame_is_encoded_once_for_a_fan_out() -> None:
    payload = b'{"data":"hi","event":"e","message_send_time":1,"pipe":"chat"}'
    first = text_frame(payload)
    assert all(text_frame(payload) is first for _ in range(1000))  # same object: no per-subscriber work
    other = text_frame(b"other")
    assert other is not first and other == encode(TEXT, b"other")


def test_reader_reassembles_fragments_split_anywhere() -> None:
    data = masked(TEXT, b"pipe_", fin=False) + masked(PING, b"p") + masked(0x0, b"count\nweb_x\nm1")
    for cut in range(1, len(data)):
        reader = FrameReader(65535)
        items = reader.feed(data[:cut]) + reader.feed(data[cut:])
        assert items == [(PING, b"p"), (TEXT, b"pipe_count\nweb_x\nm1")]
        assert reader.idle


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (masked(TEXT, b"x" * 70000), 1009),
        (masked(TEXT, b"\xff\xfe"), 1007),
        (encode(TEXT, b"unmasked"), 1002),
        (masked(0x3, b"reserved opcode"), 1002),
        (masked(0x0, b"continuation first"), 1002),
        (masked(PING, b"x" * 126), 1002),
    ],
)
def test_reader_rejects_bad_frames_with_the_right_close_code(data: bytes, code: int) -> None:
    with pytest.raises(WsProtocolError) as err:
        FrameReader(65535).feed(data)
    assert err.value.code == code


def test_reader_handles_close() -> None:
    assert FrameReader(100).feed(masked(CLOSE, (1000).to_bytes(2, "big"))) == [(CLOSE, b"\x03\xe8")]


async def test_slow_consumer_is_closed_and_its_queue_bounded() -> None:
    server_side, client_side = socket.socketpair()
    server_side.setblocking(False)
    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client_side.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    async with trio.open_nursery() as nursery:
        session = WsSession(1, 0, ConnInfo(), server_side, nursery.start_soon, max_queued_bytes=64 * 1024)
        frame = b"x" * 1000
        sent = 0
        while session.closing is None:  # the client never reads
            session.send(frame)
            sent += 1
            assert session.queued_bytes <= 64 * 1024 + len(frame) + 8
        assert "slow consumer" in session.closing
        assert session.queued_bytes == 0  # the queue was dropped, not kept
        assert sent < 1000  # bounded: a few hundred KB at most went anywhere
        session.send(frame)  # further sends are ignored, nothing grows
        assert session.queued_bytes == 0
        nursery.cancel_scope.cancel()
    assert client_side.recv(65536)  # what fitted was delivered before the bound hit
    server_side.close()
    client_side.close()
