"""TLS on the browser port (wss://, https://): OpenSSL on the descriptor, and no task per idle wss:// session.

A connection to a TLS port is wrapped in a ``TlsStream``: a trio stream over a
non-blocking ``ssl.SSLSocket``, so OpenSSL reads and writes the socket itself.
The handshake and every HTTP request (long-poll, /admin, the upgrade) go
through it like through any trio stream. An upgraded connection then leaves
its task like a plain one (``_wsconn.py``): the stream hands its ``SSLSocket``
to a ``TlsWsSession``, which the idle poller (``_idle.py``) reads when it has
bytes. The session is a ``WsSession`` whose socket happens to encrypt: a frame
is one non-blocking ``SSL_write`` (a fan-out encrypts per session, that is
inherent), a read decrypts one record.

Why an ``SSLSocket`` and not trio's ``SSLStream`` (an ``SSLObject`` over two
memory BIOs): the memory BIOs keep the largest buffer that ever went through
them (a 64 KB frame leaves 85 KB behind per session), and cost a copy each
way; the socket BIO keeps nothing. What remains per idle session is OpenSSL's
own state: with ``SSL_MODE_RELEASE_BUFFERS`` (Python sets it) the 16 KB record
buffers are freed between records, and an SSL object still takes about 8 KB
before its handshake and 14–15 KB after it (``bench/tls_floor.py``,
docs/performance.md, "TLS (issue 16)").

Two rules of non-blocking OpenSSL shape the session's writes: an ``SSL_write``
that wants to write more must be retried with the same bytes (the outbox's
head is retried whole, and nothing else is written before it), and without
partial writes it returns either everything or "want write" (so the outbox
never holds a cut frame).
"""

from __future__ import annotations

import contextlib
import socket as stdsocket
import ssl
from collections.abc import Callable
from typing import TypeVar

import trio

from ..hub import ConnInfo
from ._host import SessionHost
from ._http import Request
from ._session import next_conn_id
from ._wsconn import NOT_AN_UPGRADE, WsSession, admit_session, handshake_response

__all__ = ["TlsStream", "TlsWsSession", "accept_tls_websocket"]

T = TypeVar("T")

#: OpenSSL would continue once the socket is readable or writable: try again then.
_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class TlsStream(trio.abc.Stream):
    """A trio stream over a non-blocking server-side ``ssl.SSLSocket``; ``detach`` hands the socket on.

    One task may send while another receives (the admin socket's pusher and
    reader do); two concurrent sends are refused (``BusyResourceError``), as
    OpenSSL must see a write it wants to go on with again before any other.
    """

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.socket: ssl.SSLSocket = sock  # ``socket``: what the front reads the peer's address from
        self._sending = False
        self._detached = False

    @classmethod
    def wrap(cls, stream: trio.SocketStream, context: ssl.SSLContext) -> TlsStream:
        """Take the accepted connection's descriptor from ``stream`` (left empty) into a TLS socket."""
        sock = stdsocket.socket(fileno=stream.socket.detach())
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        tls.setblocking(False)
        return cls(tls)

    async def _retry(self, op: Callable[[], T]) -> T:
        """Run ``op`` (one OpenSSL call) until it stops wanting the socket; socket errors break the stream."""
        if self._detached:
            raise trio.ClosedResourceError("the session took this connection's socket")
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while True:
            try:
                result = op()
            except ssl.SSLWantReadError:
                await trio.lowlevel.wait_readable(self.socket)
            except ssl.SSLWantWriteError:
                await trio.lowlevel.wait_writable(self.socket)
            except (OSError, ValueError) as exc:  # ValueError: the socket was closed meanwhile
                raise trio.BrokenResourceError(f"TLS connection failed: {exc}") from exc
            else:
                if not waited:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                return result
            waited = True

    async def do_handshake(self) -> None:
        await self._retry(self.socket.do_handshake)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        sock = self.socket
        size = max_bytes or 65536
        return await self._retry(lambda: sock.recv(size))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this TLS stream")
        self._sending = True
        try:
            view = memoryview(data)
            sock = self.socket
            while view:
                sent = await self._retry(lambda: sock.send(view))  # noqa: B023 (called at once)
                view = view[sent:]
            if not data:
                await trio.lowlevel.checkpoint()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.wait_writable(self.socket)

    def detach(self) -> ssl.SSLSocket:
        """The socket, for a session that lives on without this stream (closing the stream no longer closes it)."""
        self._detached = True
        return self.socket

    async def aclose(self) -> None:
        if not self._detached:
            close_tls(self.socket)
        await trio.lowlevel.checkpoint()


def close_tls(sock: ssl.SSLSocket) -> None:
    """Send close_notify if the socket takes it now (never wait for the peer's), then close."""
    if sock.fileno() < 0:
        return
    with contextlib.suppress(OSError, ValueError):  # want-read (the peer's answer), a broken or half-done TLS
        sock.unwrap()
    trio.lowlevel.notify_closing(sock)
    sock.close()


class TlsWsSession(WsSession):
    """A ``WsSession`` on an ``SSLSocket``: the same rules, with OpenSSL's way of saying "not now"."""

    __slots__ = ()

    _WOULD_BLOCK = (BlockingIOError, InterruptedError, *_WANT)
    _FULL_READ = 16384  # a record's plaintext at most: a full one may have another behind it
    _DIRECT = False  # every byte goes through OpenSSL: the engine never writes to this socket itself

    @staticmethod
    def _send_chunks(sock: stdsocket.socket, chunks: list[bytes | memoryview]) -> int:
        """``SSLSocket`` has no ``sendmsg``: the chunks go out as one write (one TLS record each 16 KB),
        joined up to 64 KB so a long queue is not copied whole for a partial write."""
        if len(chunks) == 1:
            return sock.send(chunks[0])
        take, size = 0, 0
        while take < len(chunks) and size < 65536:
            size += len(chunks[take])
            take += 1
        return sock.send(b"".join(chunks[:take]))

    def _shutdown(self) -> None:
        """Shut the descriptor (``SSLSocket.shutdown`` would also drop the TLS state a last write needs)."""
        try:
            stdsocket.socket.shutdown(self._sock, stdsocket.SHUT_RDWR)
        except OSError:
            pass

    def release(self) -> None:
        close_tls(self._sock)  # type: ignore[arg-type]


async def accept_tls_websocket(host: SessionHost, stream: TlsStream, request: Request,
                               info: ConnInfo) -> WsSession | None:
    """Answer the upgrade and bring the session online with the stream's socket; None if refused (answered)."""
    reply = handshake_response(request)
    if reply is None:
        await stream.send_all(NOT_AN_UPGRADE)
        return None
    session = TlsWsSession(next_conn_id(), 0, info, stream.detach(), host.spawn, host.options.max_queued_bytes)
    opened = admit_session(host, session, reply, request, info)
    if opened is None:
        return None
    await host.attach(*opened)
    return session
