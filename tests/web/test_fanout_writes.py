"""The write side of fan-out (cometql/engine.py ``fan_out``, cometql/web/_wsconn.py): frames reach
each socket intact and in order, whether written directly, together, in part or behind a queue.

Real TCP sockets on loopback; the peer reads with a blocking ``recv`` under a hang-guard timeout.
No timing is asserted: only what arrives, in what order, and how the session ends.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import trio
import trio.testing

from cometql.engine import Engine, fan_out, fan_out_many
from cometql.hub import ConnInfo, Deliver, Hub, ListSubscriber
from cometql.hub._frames import Frames
from cometql.store import MemoryStore
from cometql.web._outbox import SLOW_CONSUMER
from cometql.web._wsconn import WsSession
from cometql.wsframes import TEXT, frame_header, text_frame

CAPS = frozenset({"ack", "offset", "hb"})
#: Generous: on a loaded 2-core machine a loopback read can wait; never a speed requirement.
HANG_GUARD = 15.0


@contextmanager
def tcp_pair(sndbuf: int | None = None, rcvbuf: int | None = None) -> Iterator[tuple[socket.socket, socket.socket]]:
    """(server side, non-blocking; client side, blocking with a hang guard) over loopback TCP."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.socket()
        if rcvbuf is not None:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
    if sndbuf is not None:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    server.setblocking(False)
    client.settimeout(HANG_GUARD)
    try:
        yield server, client
    finally:
        server.close()
        client.close()


def session_on(sock: socket.socket, spawn=None, max_queued_bytes: int = 1 << 20,  # type: ignore[no-untyped-def]
               caps: frozenset[str] = frozenset()) -> WsSession:
    session = WsSession(1, 0, ConnInfo(), sock, spawn or _no_task, max_queued_bytes=max_queued_bytes)
    session.caps = caps
    session.send(b"serverInfo")  # what every session gets first; after it the socket takes frames directly
    return session


def _no_task(fn: object) -> None:
    raise AssertionError(f"a flusher was started: {fn}")


def read_frames(sock: socket.socket, count: int, control: bool = False) -> list[bytes]:
    """The payloads of the next ``count`` server frames: text frames, and with ``control`` others as
    ``opcode:payload``; fails on any byte beyond them."""
    buf = b""
    out: list[bytes] = []
    while len(out) < count:
        header = frame_header(buf, 0)
        if header is not None and len(buf) >= header[0] + header[1]:
            head, length = header
            payload = buf[head:head + length]
            if buf[0] == 0x80 | TEXT:
                out.append(payload)
            else:
                assert control, f"not a text frame: {buf[:2]!r}"
                out.append(b"%d:%s" % (buf[0] & 0x0F, payload))
            buf = buf[head + length:]
            continue
        chunk = sock.recv(1 << 20)
        assert chunk, f"the connection ended after {len(out)} of {count} frames"
        buf += chunk
    assert buf == b"", "more bytes than the frames expected"
    return out


async def test_one_fan_out_reaches_every_kind_of_session_once() -> None:
    """Direct sockets, a session without one (its ``send``) and a closing session (nothing) in one fan-out."""
    with tcp_pair() as (s1, c1), tcp_pair() as (s2, c2):
        direct, closing = session_on(s1), session_on(s2)
        assert read_frames(c1, 1) == [b"serverInfo"] and read_frames(c2, 1) == [b"serverInfo"]
        assert direct.frame_socket is s1
        closing.close("bye")
        assert closing.frame_socket is None
        listed = ListSubscriber(3)
        fan_out((direct, listed, closing), b"message")
        assert read_frames(c1, 1) == [b"message"]
        assert listed.frames == [b"message"]
        c2.settimeout(HANG_GUARD)
        assert c2.recv(100)[:1] == b"\x88"  # the close frame, and no message after it
        assert c2.recv(100) == b""


async def test_each_session_gets_the_form_of_its_capabilities() -> None:
    with tcp_pair() as (s1, c1), tcp_pair() as (s2, c2):
        legacy, capable = session_on(s1), session_on(s2, caps=CAPS)
        read_frames(c1, 1), read_frames(c2, 1)
        frames = Frames({"event": "e", "pipe": "p"}, {"offset": 7})
        fan_out((capable, legacy), frames)
        assert read_frames(c1, 1) == [frames.legacy]
        assert read_frames(c2, 1) == [frames.capable] and b'"offset":7' in frames.capable


class RecordingSocket:
    """A socket that records each ``send`` (and takes everything)."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sends.append(bytes(data))
        return len(data)


class DirectSubscriber(ListSubscriber):
    frame_socket: RecordingSocket | None = None

    def unsent(self, rest: memoryview) -> None:
        raise AssertionError("everything was taken")


def test_frames_waiting_together_go_to_a_socket_in_one_send_in_order() -> None:
    a, b = DirectSubscriber(1), DirectSubscriber(2, caps=CAPS)
    a.frame_socket, b.frame_socket = RecordingSocket(), RecordingSocket()
    queued = ListSubscriber(3)
    frames = Frames({"event": "h", "pipe": "p"}, {"offset": 1})
    fan_out_many([Deliver((a, b, queued), b"one"), Deliver((b,), b"two"), Deliver((a, b), frames),
                  Deliver((queued, a), b"three")])
    assert a.frame_socket.sends == [text_frame(b"one") + text_frame(frames.legacy) + text_frame(b"three")]
    assert b.frame_socket.sends == [text_frame(b"one") + text_frame(b"two") + text_frame(frames.capable)]
    assert queued.frames == [b"one", b"three"]


async def test_deliveries_queued_in_one_turn_arrive_intact_and_in_order() -> None:
    """The delivery task hands out what several statements decided together: every frame, in order."""
    hub = Hub(password="p", new_id=lambda: "id", new_secret=lambda: "s")
    engine = Engine(hub, MemoryStore())
    with tcp_pair() as (s1, c1), tcp_pair() as (s2, c2):
        async with trio.open_nursery() as nursery:
            x, y = session_on(s1, nursery.start_soon), session_on(s2, nursery.start_soon, caps=CAPS)
            read_frames(c1, 1), read_frames(c2, 1)
            nursery.start_soon(engine.run_deliveries)
            await trio.testing.wait_all_tasks_blocked()
            payloads = [f"message {i}".encode() * (i + 1) for i in range(200)]
            for payload in payloads:  # no checkpoint between: all wait for the delivery task together
                await engine.apply([Deliver((x, y), payload)])
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert read_frames(c1, 200) == payloads
        assert read_frames(c2, 200) == payloads
        assert engine.delivered == 400


async def test_a_partial_send_is_queued_and_the_flusher_sends_the_rest_and_what_follows() -> None:
    """A frame larger than the socket takes: the rest and later frames wait in the outbox, in order;
    once the peer reads, the session writes directly again."""
    big = b"x" * (4 << 20)
    with tcp_pair(sndbuf=16384, rcvbuf=16384) as (sock, client):
        async with trio.open_nursery() as nursery:
            session = session_on(sock, nursery.start_soon, max_queued_bytes=16 << 20)
            read_frames(client, 1)
            fan_out((session,), big)
            assert session.flushing and session.frame_socket is None
            for i in range(50):
                fan_out((session,), f"after {i}".encode())
            session.ping(b"")  # a control frame joins the same queue
            received = await trio.to_thread.run_sync(read_frames, client, 52, True)
            assert received == [big, *(f"after {i}".encode() for i in range(50)), b"9:"]  # the ping last
            await trio.testing.wait_all_tasks_blocked()
            assert not session.flushing and session.frame_socket is sock
            fan_out((session,), b"direct again")
            assert await trio.to_thread.run_sync(read_frames, client, 1) == [b"direct again"]


async def test_a_slow_socket_over_its_bound_is_closed_and_gets_nothing_more() -> None:
    with tcp_pair(sndbuf=8192, rcvbuf=8192) as (sock, client):
        async with trio.open_nursery() as nursery:
            session = session_on(sock, nursery.start_soon, max_queued_bytes=64 * 1024)
            read_frames(client, 1)
            for i in range(1000):  # the peer reads nothing: the kernel's buffers fill, then the outbox
                fan_out((session,), b"%04d" % i * 64)
                if session.closing is not None:
                    break
            assert session.closing == SLOW_CONSUMER
            assert session.dropped >= 1 and session.frame_socket is None and session.queued_bytes == 0
            fan_out((session,), b"never")  # nothing is written or queued for a closing session
            assert not session.flushing or session.queued_bytes == 0
            await trio.testing.wait_all_tasks_blocked()
            assert not session.flushing
        data = b""
        while chunk := client.recv(1 << 16):  # what the kernel took before the shut, then the end
            data += chunk
        assert b"never" not in data


def test_a_large_fan_out_reaches_each_session_once() -> None:
    """The first few sessions are written before the rest are looked at: still one frame each."""
    subs = [ListSubscriber(i, caps=CAPS if i % 3 else frozenset()) for i in range(1, 301)]
    fan_out(tuple(subs), b"to all")
    assert all(s.frames == [b"to all"] for s in subs)
    frames = Frames({"event": "e", "pipe": "p"}, {"offset": 2})
    fan_out(tuple(subs), frames)
    assert all(s.frames[1] == (frames.capable if s.caps else frames.legacy) for s in subs)


async def test_the_first_answer_of_a_turn_hands_out_at_once_later_ones_wait_for_the_delivery_task() -> None:
    """``Engine.answered``: the first statement's fan-out leaves with its OK, in the same task step;
    statements answered before the delivery task has run leave theirs to it (written together,
    ``fan_out_many``), and after it has run the next answer hands out at once again."""
    hub = Hub(password="p", new_id=lambda: "id", new_secret=lambda: "s")
    engine = Engine(hub, MemoryStore())

    def waiting(client: socket.socket) -> bytes:  # what has reached the peer so far, without blocking
        client.setblocking(False)
        try:
            return client.recv(1 << 16)
        except BlockingIOError:
            return b""
        finally:
            client.settimeout(HANG_GUARD)

    with tcp_pair() as (sock, client):
        async with trio.open_nursery() as nursery:
            session = session_on(sock, nursery.start_soon)
            read_frames(client, 1)
            nursery.start_soon(engine.run_deliveries)
            await trio.testing.wait_all_tasks_blocked()
            for frame in (b"a", b"b", b"c"):  # three statements answered in one task step
                await engine.apply([Deliver((session,), frame)])
                engine.answered()
            # a blocking read holds the event loop: no other task can have sent it
            assert read_frames(client, 1) == [b"a"]
            assert waiting(client) == b""  # b and c wait for the delivery task
            await trio.testing.wait_all_tasks_blocked()
            assert read_frames(client, 2) == [b"b", b"c"]
            await engine.apply([Deliver((session,), b"d")])
            engine.answered()
            assert read_frames(client, 1) == [b"d"]
            nursery.cancel_scope.cancel()
    assert engine.delivered == 4
