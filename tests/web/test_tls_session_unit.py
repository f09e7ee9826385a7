"""wss:// sessions without a server: a ``TlsWsSession`` on a real TLS socket, its peer driven record by record.

The server side is what the front builds (``TlsStream`` over a socket pair,
its handshake, then ``TlsWsSession`` on the detached ``SSLSocket``). The
browser side is an ``ssl.SSLObject`` over memory BIOs on the other end, so a
test can send a TLS record in pieces or stop in the middle of one. Each test
checks what the browser decrypts, and that the idle session needs no task for
pings, frames and the close.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace

import pytest
import trio
import trustme

from cometql.hub import ConnInfo
from cometql.web._idle import IdlePoller
from cometql.web._tls import TlsStream, TlsWsSession
from cometql.wsframes import CLOSE, PING, PONG, TEXT, close_frame, encode, text_frame

from .test_wsconnection_unit import close_payload
from .test_wsframes_unit import masked

HANG_GUARD = 15  # seconds: a wait that never ends fails instead of hanging (never a speed requirement)


class Browser:
    """The client end: TLS in memory over its half of the socket pair (blocking reads with a timeout)."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.sock = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")

    def records(self, data: bytes) -> bytes:
        """``data`` encrypted: the TLS records the browser would put on the wire."""
        self.tls.write(data)
        return self.outgoing.read()

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.records(data))

    def flush(self) -> None:
        if self.outgoing.pending:
            self.sock.sendall(self.outgoing.read())

    def receive(self, size: int) -> bytes:
        """Exactly ``size`` decrypted bytes (blocking: call from a thread while the server side runs)."""
        got = b""
        while len(got) < size:
            try:
                got += self.tls.read(size - len(got))
            except ssl.SSLWantReadError:
                raw = self.sock.recv(65536)
                if not raw:
                    raise ConnectionError(f"closed after {len(got)} of {size} bytes") from None
                self.incoming.write(raw)
        return got


@pytest.fixture(scope="module")
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def _handshake(stream: TlsStream, browser: Browser) -> None:
    async def browser_side() -> None:
        while True:
            try:
                browser.tls.do_handshake()
                browser.flush()
                return
            except ssl.SSLWantReadError:
                browser.flush()
                await trio.lowlevel.wait_readable(browser.sock)
                browser.incoming.write(browser.sock.recv(65536))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(browser_side)
        await stream.do_handshake()


Spawn = Callable[[Callable[[], Awaitable[None]]], None]


@pytest.fixture
async def pair(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> AsyncIterator[tuple[TlsWsSession, Browser, Spawn]]:
    """A TLS session after its handshake, the browser at the other end, and a spawn for flusher tasks."""
    server_ctx, client_ctx = contexts
    server_sock, client_sock = socket.socketpair()
    server_sock.setblocking(False)
    client_sock.setblocking(False)
    stream = TlsStream.wrap(trio.SocketStream(trio.socket.from_stdlib_socket(server_sock)), server_ctx)
    browser = Browser(client_sock, client_ctx)
    with trio.fail_after(HANG_GUARD):
        await _handshake(stream, browser)
    client_sock.setblocking(True)
    client_sock.settimeout(HANG_GUARD)
    async with trio.open_nursery() as nursery:
        session = TlsWsSession(1, 0, ConnInfo(), stream.detach(), nursery.start_soon, max_queued_bytes=1 << 20)
        await stream.aclose()  # the stream is done with: the session keeps the socket open
        yield session, browser, nursery.start_soon
        session.release()
    client_sock.close()


def _no_task(fn: object, *args: object) -> None:
    raise AssertionError(f"a task was started: {fn}")


async def _read_until(session: TlsWsSession, check: Callable[[list[bytes] | None], bool]) -> list[bytes] | None:
    """What ``session.read()`` returns once ``check`` accepts it (waiting for bytes between reads)."""
    with trio.fail_after(HANG_GUARD):
        while True:
            await trio.lowlevel.wait_readable(session.fileno())
            got = session.read()
            if check(got):
                return got


async def test_the_idle_poller_answers_a_ping_over_tls_without_a_task(
        pair: tuple[TlsWsSession, Browser, Spawn]) -> None:
    session, browser, _ = pair
    poller = IdlePoller(SimpleNamespace())  # type: ignore[arg-type]
    poller.add(session)
    browser.send(masked(PING, b"are you there"))
    with trio.fail_after(HANG_GUARD):
        await trio.lowlevel.wait_readable(session.fileno())
    poller._read(SimpleNamespace(start_soon=_no_task), session.fileno(), session)  # type: ignore[arg-type]
    pong = encode(PONG, b"are you there")
    assert await trio.to_thread.run_sync(browser.receive, len(pong)) == pong
    assert session.closing is None and session._ws is None  # idle again: no parser kept


async def test_frames_pings_and_the_close_go_out_encrypted_in_order(pair: tuple[TlsWsSession, Browser, Spawn]) -> None:
    session, browser, _ = pair
    session._spawn = _no_task  # the socket takes these at once: no flusher
    session._prefix = b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
    session.send(b"serverInfo")
    session.ping(b"")
    session.close("connection older than maxUptime", 1001)
    expected = (b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + text_frame(b"serverInfo") + encode(PING, b"")
                + close_frame(1001, "connection older than maxUptime"))
    assert await trio.to_thread.run_sync(browser.receive, len(expected)) == expected


async def test_a_frame_larger_than_a_record_and_the_socket_buffer_arrives_whole(
        pair: tuple[TlsWsSession, Browser, Spawn]) -> None:
    """Several TLS records, more than the socket pair holds: the flusher retries OpenSSL's write until done."""
    session, browser, _ = pair
    payload = bytes(range(256)) * 2000  # 512 KB: 32 records
    frames = [text_frame(payload), text_frame(b"after it")]
    session.send(payload)
    assert session.flushing  # the kernel did not take it all: queued behind OpenSSL's pending write
    session.send(b"after it")
    size = sum(len(f) for f in frames)
    assert await trio.to_thread.run_sync(browser.receive, size) == b"".join(frames)
    with trio.fail_after(HANG_GUARD):
        while session.flushing:
            await trio.sleep(0.01)
    assert session.closing is None


async def test_a_message_across_several_records_and_reads_is_one_command(
        pair: tuple[TlsWsSession, Browser, Spawn]) -> None:
    session, browser, _ = pair
    text = b"web_pipe_send\nweb_x\n" + b"y" * 60000  # four records of the browser's
    wire = browser.records(masked(TEXT, text))
    messages: list[bytes] = []
    with trio.fail_after(HANG_GUARD):
        for start in range(0, len(wire), 7000):  # the records arrive cut anywhere, read as they come
            browser.sock.sendall(wire[start:start + 7000])
            await trio.lowlevel.wait_readable(session.fileno())
            got = session.read()
            assert got is not None
            messages += got
    assert messages == [text]
    assert session.closing is None


async def test_the_peer_closing_in_the_middle_of_a_record_ends_the_session(
        pair: tuple[TlsWsSession, Browser, Spawn]) -> None:
    session, browser, _ = pair
    wire = browser.records(masked(TEXT, b"never complete"))
    browser.sock.sendall(wire[:len(wire) // 2])
    browser.sock.shutdown(socket.SHUT_WR)
    assert await _read_until(session, lambda got: got is None) is None
    assert session.closing is None  # the browser went away: nothing to send it


async def test_the_browsers_close_is_echoed_over_tls_and_ends_the_session(
        pair: tuple[TlsWsSession, Browser, Spawn]) -> None:
    session, browser, _ = pair
    browser.send(masked(TEXT, b"dropped with the close") + masked(CLOSE, close_payload(4001)))
    assert await _read_until(session, lambda got: True) is None
    assert session.closing == "closed by the browser"
    echo = close_frame(4001)
    assert await trio.to_thread.run_sync(browser.receive, len(echo)) == echo


async def test_abort_sends_the_close_and_shuts_the_tls_session(pair: tuple[TlsWsSession, Browser, Spawn]) -> None:
    session, browser, _ = pair
    session.abort("no answer to ping")
    echo = close_frame(1001, "no answer to ping")
    assert await trio.to_thread.run_sync(browser.receive, len(echo)) == echo
    assert await _read_until(session, lambda got: got is None) is None  # the socket is shut: the poller ends it
    session.ping(b"")  # nothing after the close
