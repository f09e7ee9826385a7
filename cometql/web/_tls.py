"""WebSocket sessions over TLS (wss://): one task per session writes through the SSLStream.

The plain WebSocket path (``_wsconn.py``) writes frames straight to the socket
with non-blocking sends and keeps no task per idle session. TLS makes that
impossible: every byte must go through the ``trio.SSLStream``, which is
async. So a TLS session is a ``BrowserSession`` (the bounded outbox the
long-poll uses) plus a reader task and a writer task that pumps the outbox into
the stream. Correctness first: a wss:// session costs two tasks and the TLS
state (tens of KB) where a ws:// session costs about one KB. Operators who need
many idle browsers behind TLS can terminate TLS in front (nginx) instead.
"""

from __future__ import annotations

import trio

from ..hub import ConnInfo
from ..wsframes import CLOSE, PING, PONG, TEXT, FrameReader, WsProtocolError, close_frame, encode, text_frame
from ._host import SessionHost
from ._http import Request
from ._params import ParamsError
from ._session import BrowserSession
from ._wsconn import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    MAX_MESSAGE,
    admit_websocket,
    handshake_response,
    refusal_frame,
)

__all__ = ["TlsWsSession", "accept_tls_websocket", "run_tls_websocket"]


class TlsWsSession(BrowserSession):
    """A BrowserSession that remembers the close code to send (the hub closes with a reason only)."""

    __slots__ = ("close_code",)

    def __init__(self, info: ConnInfo, max_queued_bytes: int) -> None:
        super().__init__(0, info, transport="websocket", max_queued_bytes=max_queued_bytes)
        self.close_code = CLOSE_POLICY

    def close(self, reason: str, code: int = CLOSE_POLICY) -> None:
        if self.closing is None:
            self.close_code = code
        super().close(reason)


async def accept_tls_websocket(host: SessionHost, stream: trio.SSLStream[trio.abc.Stream], request: Request,
                               info: ConnInfo) -> TlsWsSession | None:
    """Answer the upgrade and bring the session online; None if refused (already answered)."""
    reply = handshake_response(request)
    if reply is None:
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return None
    session = TlsWsSession(info, host.options.max_queued_bytes)
    try:
        params = admit_websocket(host, request, info, session)
    except ParamsError as exc:
        refusal = text_frame(refusal_frame(exc, host.now())) + close_frame(CLOSE_POLICY, exc.text)
        await stream.send_all(reply + refusal)
        return None
    await stream.send_all(reply)
    session.dev_id = params.dev_id
    info.uuid = params.uuid
    await host.attach(session, params)
    return session


async def run_tls_websocket(host: SessionHost, session: TlsWsSession, stream: trio.SSLStream[trio.abc.Stream]) -> None:
    """Serve the session until either side closes; it leaves the hub at the end."""
    lock = trio.Lock()  # the reader answers pings while the writer sends frames
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_write, session, stream, lock, nursery.cancel_scope)
            await _read(host, session, stream, lock)
            session.close(session.closing or "closed by the browser")
            with trio.move_on_after(1):  # let the writer send what is queued and the close frame
                await trio.sleep_forever()
            nursery.cancel_scope.cancel()
    finally:
        if session.closing is None:  # server shutting down: ask the browser to reconnect
            with trio.move_on_after(1) as scope:
                scope.shield = True
                try:
                    await stream.send_all(close_frame(CLOSE_GOING_AWAY, "server shutting down"))
                except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                    pass
        await host.detach(session)


async def _send(stream: trio.SSLStream[trio.abc.Stream], lock: trio.Lock, data: bytes) -> None:
    async with lock:
        await stream.send_all(data)


async def _write(session: TlsWsSession, stream: trio.SSLStream[trio.abc.Stream], lock: trio.Lock,
                 done: trio.CancelScope) -> None:
    try:
        while True:
            await session.wait()
            pending = session.take_all()
            if pending:
                await _send(stream, lock, b"".join(text_frame(f) for f in pending))
            if session.closing is not None:
                await _send(stream, lock, close_frame(session.close_code, session.closing[:120]))
                break
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    done.cancel()


async def _read(host: SessionHost, session: TlsWsSession, stream: trio.SSLStream[trio.abc.Stream],
                lock: trio.Lock) -> None:
    reader = FrameReader(MAX_MESSAGE)
    while session.closing is None:
        try:
            data = await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        if not data:
            return
        try:
            items = reader.feed(data)
        except WsProtocolError as exc:
            session.close(exc.reason, exc.code)
            return
        for opcode, payload in items:
            if opcode == TEXT:
                await host.run_command(session, payload.decode())
            elif opcode == PING:
                await _send(stream, lock, encode(PONG, payload))
            elif opcode == CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else CLOSE_NORMAL
                session.close("closed by the browser", code if 1000 <= code < 5000 else CLOSE_NORMAL)
                return
            if session.closing is not None:
                return
