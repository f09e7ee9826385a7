"""Lean WebSocket sessions: a socket and one slotted object per idle browser, no task.

Why not trio-websocket here: it keeps two tasks, a nursery, a memory channel,
events and the full wsproto/h11 state per connection (≈ 19.5 KB idle, see
recipes/idle-connections.md); browsers are many and mostly idle. After the
handshake a session is just its socket and a ``WsSession``, registered with the
idle poller (``_idle.py``), which reads it when it has bytes. The protocol's
rules are the sans-IO ``WsConnection`` (``_wsprotocol.py``), which exists only
while a frame is half-received or a close was sent: an idle session has none.

Writing never needs a task: the engine writes a fan-out's frame to
``frame_socket`` itself (the socket, while nothing is queued and the session is
not closing: one C-level loop over every session, see ``engine.fan_out``) or
calls ``send``; a ping's pong and close frames take the same path, a
non-blocking ``send`` on the socket. Only what the kernel will not take yet is
queued, in the session's ``Outbox`` (created then, dropped once drained), with
a flusher task while it lasts that writes every queued frame with one
``sendmsg``; an outbox over its bound closes the session (a slow consumer is
disconnected instead of growing memory).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket as stdsocket
from collections.abc import Awaitable, Callable
from typing import assert_never

import trio

from ..hub import NO_CAPS, ConnInfo, Subscriber, sys_frame
from ..wsframes import text_frame
from ._host import SessionHost
from ._http import Request
from ._outbox import SLOW_CONSUMER, Outbox
from ._params import ConnectParams, ParamsError, parse_params, ws_tail
from ._pinger import PING_FRAME
from ._session import next_conn_id
from ._wsprotocol import CLOSE_GOING_AWAY, CLOSE_POLICY, CloseRequested, ProtocolError, TextMessage, WsConnection

__all__ = ["MAX_MESSAGE", "NOT_AN_UPGRADE", "WsSession", "accept_websocket", "admit_session", "admit_websocket",
           "handshake_response", "open_websocket", "refusal_frame"]

log = logging.getLogger("cometql.web")

MAX_MESSAGE = 65535  # CppComet's client frame limit
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: The reply to an upgrade request ``handshake_response`` refuses (ws, wss and the admin socket).
NOT_AN_UPGRADE = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def handshake_response(request: Request) -> bytes | None:
    """The 101 reply for a valid upgrade request, or None if it is not one."""
    key = request.headers.get("sec-websocket-key", "").strip()
    if not key or len(key) > 64 or request.method != "GET":
        return None
    accept = base64.b64encode(hashlib.sha1(key.encode("latin-1") + _GUID).digest()).decode()
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Accept: {accept}"]
    protocols = request.headers.get("sec-websocket-protocol")
    if protocols:
        lines.append(f"Sec-WebSocket-Protocol: {protocols.split(',')[0].strip()}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class WsSession:
    """A WebSocket browser session: the hub's Subscriber, writing to its socket directly."""

    __slots__ = ("conn_id", "dev_id", "user_id", "info", "_closing", "_sock", "_outbox", "_spawn",
                 "max_queued_bytes", "_prefix", "_ws", "dropped", "opened_at", "caps", "pinged_at", "heard",
                 "frame_socket")

    transport = "websocket"
    #: What ``send``/``recv`` raise when the socket cannot go on now (a TLS socket adds its want-read/write).
    _WOULD_BLOCK: tuple[type[OSError], ...] = (BlockingIOError, InterruptedError)
    #: A read this long may have more behind it: read again (a TLS socket returns one record, ≤ 16 KB, a read).
    _FULL_READ = 65536
    #: Whether the engine may write frames to the socket itself (``frame_socket``): it calls the plain
    #: ``socket.send``, which on a TLS socket would bypass the encryption.
    _DIRECT = True

    def __init__(self, conn_id: int, dev_id: int, info: ConnInfo, sock: stdsocket.socket,
                 spawn: Callable[[Callable[[], Awaitable[None]]], None], max_queued_bytes: int) -> None:
        self.conn_id = conn_id
        self.dev_id = dev_id
        self.user_id = 0
        self.info = info
        self._closing: str | None = None
        #: The socket while a frame may be written to it at once (engine.Direct); None until the 101
        #: reply has left, while bytes are queued and once closing.
        self.frame_socket: stdsocket.socket | None = None
        self._sock = sock
        self._outbox: Outbox | None = None  # only while the kernel has refused bytes
        self._spawn = spawn
        self.max_queued_bytes = max_queued_bytes
        self._ws: WsConnection | None = None  # only while a frame is half-received or a close was sent
        self.opened_at = trio.current_time()
        self._prefix = b""  # the 101 reply, sent together with the first frame (one send, not two)
        self.dropped = 0  # frames discarded by a slow-consumer close (for metrics)
        self.caps = NO_CAPS  # what the browser announced, set from its parameters before it opens
        # the pinger's two slots (_pinger.py): when the last ping left (the opening counts as one), and
        # whether a byte arrived since; the same float object as opened_at, so no extra object
        self.pinged_at = self.opened_at
        self.heard = True

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def closing(self) -> str | None:
        """Why the session is ending (set whenever the connection sent or received a close), else None."""
        return self._closing

    @closing.setter
    def closing(self, reason: str | None) -> None:
        self._closing = reason
        if reason is not None:
            self.frame_socket = None  # no frame may follow a close

    @property
    def flushing(self) -> bool:
        """Bytes the kernel refused are waiting (a flusher task is sending them)."""
        return self._outbox is not None

    @property
    def queued_bytes(self) -> int:
        """How many bytes wait in the outbox."""
        return 0 if self._outbox is None else self._outbox.nbytes

    def _connection(self) -> WsConnection:
        ws = self._ws
        if ws is None:
            ws = self._ws = WsConnection(MAX_MESSAGE)
        return ws

    # ---- Subscriber protocol

    def send(self, frame: bytes) -> None:
        if self._closing is None:
            self._write(text_frame(frame))

    def unsent(self, rest: memoryview) -> None:
        """The part of a frame ``frame_socket`` did not take (the engine wrote the rest): queued."""
        self._queue(rest)

    def close(self, reason: str, code: int = CLOSE_POLICY) -> None:
        if self.closing is not None:
            return
        self.closing = reason
        data = self._connection().send_close(code, reason)
        if data:
            self._write(data)
        if self._outbox is None:
            self._shutdown()

    def goodbye(self, reason: str, frame: bytes) -> None:
        """Server shutdown: send ``frame`` (the close frame, encoded once for every session) if the
        kernel takes it now, and close the socket: its FIN follows the frame. No task, no waiting for
        the browser's answer, and no ``shutdown`` first (one system call less per session)."""
        if self._closing is None:  # else a close frame went out already (or the peer's came)
            self.closing = reason
            self._write(frame)
        self.release()

    # ---- for the pinger (_pinger.py)

    def ping(self, extra: bytes) -> None:
        if self.closing is None:
            self._write(PING_FRAME + extra if extra else PING_FRAME)

    def abort(self, reason: str) -> None:
        """The peer is taken for dead: send a close frame if the kernel takes it, end the session now.

        Shutting the socket also ends a flusher stuck on a peer that stopped reading (its send fails).
        """
        self.close(reason, CLOSE_GOING_AWAY)
        self._shutdown()

    # ---- writing: frames, pongs and close frames alike, without a task while the kernel takes them

    def _write(self, data: bytes) -> None:
        if self._prefix:
            data, self._prefix = self._prefix + data, b""
        if self._outbox is None:
            try:
                sent = self._sock.send(data)
            except self._WOULD_BLOCK:
                sent = 0
            except OSError:
                self.closing = self._closing or "connection lost"
                self._shutdown()
                return
            if sent == len(data):
                if self._closing is None and self._DIRECT:
                    self.frame_socket = self._sock
                return
            data = memoryview(data)[sent:]  # type: ignore[assignment]
        self._queue(data)

    def _queue(self, data: bytes | memoryview) -> None:
        """Queue what the socket would not take (behind what waits already); a flusher sends it."""
        outbox = self._outbox
        if outbox is None:
            outbox = self._outbox = Outbox(self.max_queued_bytes)
            self.frame_socket = None  # frames wait behind these bytes now
            self._spawn(self._flush)
        if not outbox.push(data) and self._closing is None:
            # a slow consumer: its socket is shut, so what is queued can never leave
            self.closing = SLOW_CONSUMER
            self.dropped = outbox.discard()
            self._shutdown()

    async def _flush(self) -> None:
        """Drain the outbox as the socket becomes writable, every queued frame in one ``sendmsg``;
        runs only while there is an outbox."""
        outbox = self._outbox
        assert outbox is not None  # started by _queue together with the outbox
        sock = self._sock
        try:
            while outbox:
                await trio.lowlevel.wait_writable(sock)
                while outbox:
                    chunks = outbox.chunks()
                    try:
                        sent = self._send_chunks(sock, chunks)
                    except self._WOULD_BLOCK:
                        break
                    whole = sent == sum(map(len, chunks))
                    outbox.consume(sent)
                    if not whole:
                        break
        except (OSError, trio.ClosedResourceError):
            outbox.discard()
        finally:
            self._outbox = None
            if self._closing is not None:
                self._shutdown()
            elif not self._prefix and self._DIRECT:
                self.frame_socket = sock

    @staticmethod
    def _send_chunks(sock: stdsocket.socket, chunks: list[bytes | memoryview]) -> int:
        """Send what is queued with one system call (``sendmsg`` gathers the chunks)."""
        return sock.sendmsg(chunks) if len(chunks) > 1 else sock.send(chunks[0])

    def _shutdown(self) -> None:
        """Wake the reader (recv returns b"") so the session ends and leaves the hub."""
        try:
            self._sock.shutdown(stdsocket.SHUT_RDWR)
        except OSError:
            pass

    # ---- reading: called by the idle poller when the socket has bytes (or hung up)

    def read(self) -> list[bytes] | None:
        """Take what the socket has; returns the complete text messages, or None when the session is over.

        Control frames are answered here, on the same non-blocking path as
        frames (no task); text messages are returned for the caller to run as
        commands (they may need to await the store). A close or a protocol
        error ends the session: messages read with it are not run.
        """
        messages: list[bytes] = []
        while True:
            try:
                data = self._sock.recv(65536)
            except self._WOULD_BLOCK:
                return messages
            except OSError:
                return None
            if not data:
                return None
            self.heard = True  # a pong or any frame: the peer is alive (the pinger's rule)
            if len(data) == 6 and data[0] == 0x8A and data[1] == 0x80 and self._ws is None:
                return messages  # the answer to our ping alone (an empty masked pong): nothing to parse
            ws = self._connection()
            error = False
            ended = False
            for event in ws.receive_data(data):
                match event:
                    case TextMessage(data=text):
                        messages.append(text)
                    case CloseRequested():
                        self.closing = "closed by the browser"
                        ended = True
                    case ProtocolError(reason=reason):
                        self.closing = self.closing or reason
                        ended = error = True
                    case _:
                        assert_never(event)
            reply = ws.data_to_send()  # pongs, the close echo, the protocol error's close
            if reply:
                self._write(reply)
            if ended:
                if error and self._outbox is None:
                    self._shutdown()
                return None
            if ws.idle:
                self._ws = None  # nothing half-received: no parser until bytes arrive
            if len(data) < self._FULL_READ:
                return messages

    def release(self) -> None:
        """Close the socket (the session has left the hub or is about to)."""
        self.frame_socket = None
        sock = self._sock
        if sock.fileno() >= 0:
            if self._outbox is not None:  # only a flusher ever waits on this socket in trio
                trio.lowlevel.notify_closing(sock)
            sock.close()


def admit_websocket(host: SessionHost, request: Request, info: ConnInfo, session: Subscriber) -> ConnectParams:
    """The checks every WebSocket session passes (plain or TLS): Origin, parameters, sessions per IP.

    Raises ``ParamsError`` with CppComet's code and text; the IP is counted only when all pass.
    """
    if not host.origin_ok(info.origin or None):
        raise ParamsError(423, "Error code 423(Access denied, Request from unauthorized domain.)")
    params = parse_params(ws_tail(request.target) or "", dev_index_size=host.options.dev_index_size)
    if not host.admit(session, info.ip):
        raise ParamsError(429, "Error code 429(Too many sessions from this address.)")
    return params


def refusal_frame(exc: ParamsError, now: int) -> bytes:
    error = {"error": exc.text, "error_code": exc.code, "info": "Closed due to error. See last message."}
    return sys_frame("error", error, now)


def open_websocket(host: SessionHost, sock: stdsocket.socket, request: Request,
                   info: ConnInfo) -> tuple[WsSession, ConnectParams] | None:
    """The handshake's own work, no I/O that waits: the session on ``sock`` (non-blocking, the session's
    from now on) and its parameters, or None if it was refused (answered, and ``sock`` closed).

    The 101 reply is not sent here: it leaves with serverInfo (or the error frame), which always follows.
    """
    reply = handshake_response(request)
    if reply is None:
        try:
            sock.send(NOT_AN_UPGRADE)  # a fresh socket's buffer takes these few bytes
        except OSError:
            pass
        sock.close()
        return None
    session = WsSession(next_conn_id(), 0, info, sock, host.spawn, host.options.max_queued_bytes)
    return admit_session(host, session, reply, request, info)


def admit_session(host: SessionHost, session: WsSession, reply: bytes, request: Request,
                  info: ConnInfo) -> tuple[WsSession, ConnectParams] | None:
    """Admit an upgraded session, plain or TLS (its 101 ``reply`` not sent yet): the session and its
    parameters, or None if it was refused (answered with the error frame, and released)."""
    session._prefix = reply  # goes out with serverInfo (or the error frame), which always follows
    try:
        params = admit_websocket(host, request, info, session)
    except ParamsError as exc:
        session.send(refusal_frame(exc, host.now()))
        session.close(exc.text)
        session.release()
        return None
    session.dev_id = params.dev_id
    info.uuid = params.uuid
    return session, params


async def accept_websocket(host: SessionHost, stream: trio.SocketStream, request: Request,
                           info: ConnInfo) -> WsSession | None:
    """Finish the handshake of a connection served by a task (an upgrade h11 read) and bring the
    session online; None if it was refused (already answered).

    Nothing of the HTTP request stays referenced once it returns: the session
    lives on in the idle poller with just its socket.
    """
    # Our own descriptor: trio closes the stream when the accepting task ends, the session lives on.
    sock: stdsocket.socket = stream.socket._sock.dup()  # type: ignore[attr-defined]
    sock.setblocking(False)
    opened = open_websocket(host, sock, request, info)
    if opened is None:
        return None
    session, params = opened
    await host.attach(session, params)
    return session
