"""The sans-IO WebSocket connection, the outbox, and how the sessions use them, without a server.

``WsConnection`` turns client bytes into events and queues its control replies
(pongs, the close echo, a protocol error's close) as bytes; ``Outbox`` numbers
entries and carries the slow-consumer bound. The session tests check that a
ping is answered on the socket without a task (TLS sessions: test_tls_session_unit.py).
"""

from __future__ import annotations

import socket
import struct
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cometql.hub import ConnInfo
from cometql.web._idle import IdlePoller
from cometql.web._outbox import Outbox
from cometql.web._wsconn import WsSession
from cometql.web._wsprotocol import CloseRequested, ProtocolError, TextMessage, WsConnection
from cometql.wsframes import CLOSE, PING, PONG, TEXT, close_frame, encode, text_frame

from .test_wsframes_unit import masked


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


# ---------------------------------------------------------------- WsConnection


def test_text_messages_become_events_and_pings_queue_pongs() -> None:
    ws = WsConnection(65535)
    events = ws.receive_data(masked(TEXT, b"subscription\nweb_a") + masked(PING, b"p1") + masked(TEXT, b"x"))
    assert events == [TextMessage(b"subscription\nweb_a"), TextMessage(b"x")]
    assert ws.data_to_send() == encode(PONG, b"p1")
    assert ws.data_to_send() == b""  # taken once
    assert ws.idle


def test_a_pong_from_the_client_needs_nothing() -> None:
    ws = WsConnection(65535)
    assert ws.receive_data(masked(PONG, b"late")) == []
    assert ws.data_to_send() == b""


@pytest.mark.parametrize(("payload", "echo"), [
    (close_payload(1000), 1000),
    (close_payload(1001, b"bye"), 1001),
    (close_payload(4999), 4999),
    (b"", 1000),  # no code given
    (close_payload(999), 1000),  # not a valid code
    (close_payload(5000), 1000),
])
def test_the_peers_close_is_echoed_with_its_code(payload: bytes, echo: int) -> None:
    ws = WsConnection(65535)
    events = ws.receive_data(masked(CLOSE, payload) + masked(TEXT, b"after the close") + masked(PING, b""))
    assert events == [CloseRequested(echo)]
    assert ws.data_to_send() == close_frame(echo)  # echoed once, no reason; nothing after it
    assert ws.closed and ws.close_sent and not ws.idle
    assert ws.receive_data(masked(TEXT, b"more")) == []
    assert ws.send_close(1000) == b"" and ws.send_text(b"late") == b""


def test_our_close_is_sent_once_and_the_peers_reply_is_not_echoed() -> None:
    ws = WsConnection(65535)
    assert ws.send_text(b"hi") is text_frame(b"hi")  # the fan-out's shared encoding
    frame = ws.send_close(1008, "x" * 200)
    assert frame == close_frame(1008, "x" * 200) and len(frame) <= 2 + 125
    assert ws.send_close(1000) == b""
    assert ws.send_text(b"late") == b""
    assert ws.close_sent and not ws.closed
    assert ws.receive_data(masked(TEXT, b"ignored") + masked(PING, b"p")) == []  # closing: no events, no pong
    assert ws.receive_data(masked(CLOSE, close_payload(1008))) == [CloseRequested(1008)]
    assert ws.data_to_send() == b""  # the close handshake is complete
    assert ws.closed


@pytest.mark.parametrize(("data", "code"), [
    (masked(TEXT, b"x" * 70000), 1009),
    (masked(TEXT, b"\xff\xfe"), 1007),
    (encode(TEXT, b"unmasked"), 1002),
    (masked(0x3, b"reserved opcode"), 1002),
    (masked(PING, b"x" * 126), 1002),
])
def test_a_protocol_error_queues_its_close_and_ends_the_connection(data: bytes, code: int) -> None:
    ws = WsConnection(65535)
    [event] = ws.receive_data(data)
    assert isinstance(event, ProtocolError) and event.code == code
    assert ws.data_to_send() == close_frame(code, event.reason)
    assert ws.closed
    assert ws.receive_data(masked(TEXT, b"ok")) == [] and ws.data_to_send() == b""


def test_idle_only_when_nothing_is_half_received() -> None:
    ws = WsConnection(65535)
    data = masked(TEXT, b"hello")
    assert ws.idle
    assert ws.receive_data(data[:3]) == []
    assert not ws.idle  # a half frame: the plain session keeps its connection
    assert ws.receive_data(data[3:]) == [TextMessage(b"hello")]
    assert ws.idle


_message = st.one_of(
    st.tuples(st.just(TEXT), st.text(max_size=300).map(str.encode)),
    st.tuples(st.just(PING), st.binary(max_size=125)),
)


@given(messages=st.lists(_message, max_size=12), cuts=st.lists(st.integers(0, 4000), max_size=8),
       fragment=st.booleans())
def test_any_split_of_the_stream_gives_the_same_events_and_replies(
        messages: list[tuple[int, bytes]], cuts: list[int], fragment: bool) -> None:
    stream = b""
    for opcode, payload in messages:
        if opcode == TEXT and fragment and len(payload) > 1:  # a message in two frames, a ping between
            stream += masked(TEXT, payload[:1], fin=False) + masked(PING, b"") + masked(0x0, payload[1:])
        else:
            stream += masked(opcode, payload)
    ws = WsConnection(65535)
    events: list[Any] = []
    replies = b""
    bounds = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    for start, end in zip(bounds, bounds[1:], strict=False):
        events += ws.receive_data(stream[start:end])
        replies += ws.data_to_send()
    assert events == [TextMessage(p) for op, p in messages if op == TEXT]
    pongs = []
    for op, p in messages:
        if op == PING:
            pongs.append(encode(PONG, p))
        elif fragment and len(p) > 1:
            pongs.append(encode(PONG, b""))
    assert replies == b"".join(pongs)
    assert ws.idle


# ---------------------------------------------------------------- Outbox


def test_outbox_numbers_entries_and_carries_message_ids() -> None:
    box = Outbox(limit=10)
    assert box.push(b"aaaa") and box.push(b"bbbb", "m-2")
    assert box.entries() == [(1, b"aaaa", None), (2, b"bbbb", "m-2")]
    assert box.cursor == 2 and box.nbytes == 8
    assert not box.push(b"ccc")  # 11 > 10: a slow consumer
    box.ack(2)
    assert box.entries() == [(3, b"ccc", None)] and box.nbytes == 3
    assert box.take() == [(3, b"ccc", None)] and not box and box.nbytes == 0
    assert box.push(b"d") and box.cursor == 4  # numbering goes on
    assert box.discard() == 1 and box.nbytes == 0


@given(ops=st.lists(st.one_of(st.binary(min_size=1, max_size=50), st.integers(0, 120)), max_size=40))
def test_outbox_consume_keeps_exactly_the_unsent_bytes(ops: list[bytes | int]) -> None:
    box = Outbox(limit=1 << 20)
    pushed = b""
    sent = 0
    for op in ops:
        if isinstance(op, bytes):
            box.push(op)
            pushed += op
        else:
            n = min(op, box.nbytes)
            if box:
                assert bytes(box.head()) == pushed[sent : sent + len(box.head())]
            box.consume(n)
            sent += n
        assert box.nbytes == len(pushed) - sent
        assert b"".join(bytes(f) for _, f, _ in box.entries()) == pushed[sent:]


# ---------------------------------------------------------------- sessions


class _NoTasks:
    """A nursery / spawn stand-in that fails the test if a task is started."""

    def start_soon(self, fn: object, *args: object) -> None:
        raise AssertionError(f"a task was started: {fn}")


def _client_frames(sock: socket.socket) -> bytes:
    sock.settimeout(2)
    return sock.recv(65536)


async def test_the_idle_poller_answers_a_ping_without_a_task() -> None:
    server_side, client_side = socket.socketpair()
    server_side.setblocking(False)
    session = WsSession(1, 0, ConnInfo(), server_side, _NoTasks().start_soon, max_queued_bytes=64 * 1024)
    poller = IdlePoller(SimpleNamespace())  # type: ignore[arg-type]
    poller.add(session)
    client_side.sendall(masked(PING, b"are you there"))
    poller._read(_NoTasks(), session.fileno(), session)  # type: ignore[arg-type]
    assert _client_frames(client_side) == encode(PONG, b"are you there")
    assert session.closing is None and session._ws is None  # idle again: no parser kept
    session.release()
    client_side.close()


async def test_a_plain_session_echoes_the_close_and_ends() -> None:
    server_side, client_side = socket.socketpair()
    server_side.setblocking(False)
    session = WsSession(1, 0, ConnInfo(), server_side, _NoTasks().start_soon, max_queued_bytes=64 * 1024)
    client_side.sendall(masked(TEXT, b"dropped with the close") + masked(CLOSE, close_payload(1001)))
    assert session.read() is None
    assert session.closing == "closed by the browser"
    assert _client_frames(client_side) == close_frame(1001)
    session.send(b"after the close")  # ignored
    session.release()
    client_side.close()


async def test_a_plain_session_closes_once_with_its_code() -> None:
    server_side, client_side = socket.socketpair()
    server_side.setblocking(False)
    session = WsSession(1, 0, ConnInfo(), server_side, _NoTasks().start_soon, max_queued_bytes=64 * 1024)
    session.send(b"hello")
    session.close("connection older than maxUptime", 1001)
    session.close("again", 1008)
    assert session.closing == "connection older than maxUptime"
    data = b""
    client_side.settimeout(2)
    while chunk := client_side.recv(65536):
        data += chunk
    assert data == text_frame(b"hello") + close_frame(1001, "connection older than maxUptime")
    session.release()
    client_side.close()
