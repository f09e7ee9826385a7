"""WebSocket sessions over TLS (wss://): one task per session writes through the SSLStream.

The plain WebSocket path (``_wsconn.py``) writes frames straight to the socket
with non-blocking sends and keeps no task per idle session. TLS makes that
impossible: every byte must go through the ``trio.SSLStream``, which is
async. So a TLS session is a ``BrowserSession`` (the bounded outbox the
long-poll uses) with its ``WsConnection`` (the protocol's rules, shared with
the plain path), a reader task that feeds the connection and runs commands,
and a writer task, the only one that writes: the outbox holds wire bytes, so
frames, pongs, the server's pings (``_pinger.py``) and the close frame leave in
the order they were queued, and a ping costs no task. Correctness first: a wss:// session costs two tasks and the TLS
state (tens of KB) where a ws:// session costs about one KB. Operators who need
many idle browsers behind TLS can terminate TLS in front (nginx) instead.
"""

from __future__ import annotations

from typing import assert_never

import trio

from ..hub import ConnInfo
from ._host import SessionHost
from ._http import Request
from ._params import ParamsError
from ._pinger import PING_FRAME
from ._session import BrowserSession
from ._wsconn import MAX_MESSAGE, NOT_AN_UPGRADE, admit_websocket, handshake_response, refusal_frame
from ._wsprotocol import CLOSE_GOING_AWAY, CLOSE_POLICY, CloseRequested, ProtocolError, TextMessage, WsConnection

__all__ = ["TlsWsSession", "accept_tls_websocket", "run_tls_websocket"]


class TlsWsSession(BrowserSession):
    """A BrowserSession whose outbox holds WebSocket wire bytes: frames, pongs and the close frame, in order."""

    __slots__ = ("ws", "pinged_at", "heard", "scope")

    def __init__(self, info: ConnInfo, max_queued_bytes: int) -> None:
        super().__init__(0, info, transport="websocket", max_queued_bytes=max_queued_bytes)
        self.ws = WsConnection(MAX_MESSAGE)
        self.pinged_at = trio.current_time()  # the pinger's slots (_pinger.py)
        self.heard = True
        self.scope: trio.CancelScope | None = None  # the session's tasks, while they run

    def ping(self, extra: bytes) -> None:
        if self.closing is None:
            self._queue(PING_FRAME + extra if extra else PING_FRAME)

    def abort(self, reason: str) -> None:
        """The peer is taken for dead: stop its tasks now (a writer may be stuck on a full socket)."""
        self.close(reason, CLOSE_GOING_AWAY)
        if self.scope is not None:
            self.scope.cancel()

    def send(self, frame: bytes) -> None:
        if self.closing is None:
            self._queue(self.ws.send_text(frame))

    def close(self, reason: str, code: int = CLOSE_POLICY) -> None:
        if self.closing is None:
            self.closing = reason
            data = self.ws.send_close(code, reason)
            if data:
                self.outbox.push(data)  # the close frame goes out even past the bound
        self._wake.set()

    def ended(self, event: CloseRequested | ProtocolError) -> None:
        """The browser closed or broke a rule: the session is closing (the reply is in ``answer``)."""
        if self.closing is None:
            self.closing = event.reason if isinstance(event, ProtocolError) else "closed by the browser"

    def answer(self) -> None:
        """Queue what the connection owes the browser after a read: pongs, the close echo or error close."""
        reply = self.ws.data_to_send()
        if reply:
            self._queue(reply)


async def accept_tls_websocket(host: SessionHost, stream: trio.SSLStream[trio.abc.Stream], request: Request,
                               info: ConnInfo) -> TlsWsSession | None:
    """Answer the upgrade and bring the session online; None if refused (already answered)."""
    reply = handshake_response(request)
    if reply is None:
        await stream.send_all(NOT_AN_UPGRADE)
        return None
    session = TlsWsSession(info, host.options.max_queued_bytes)
    try:
        params = admit_websocket(host, request, info, session)
    except ParamsError as exc:
        ws = session.ws
        refusal = ws.send_text(refusal_frame(exc, host.now())) + ws.send_close(CLOSE_POLICY, exc.text)
        await stream.send_all(reply + refusal)
        return None
    await stream.send_all(reply)
    session.dev_id = params.dev_id
    info.uuid = params.uuid
    await host.attach(session, params)
    return session


async def run_tls_websocket(host: SessionHost, session: TlsWsSession, stream: trio.SSLStream[trio.abc.Stream]) -> None:
    """Serve the session until either side closes; it leaves the hub at the end."""
    try:
        async with trio.open_nursery() as nursery:
            session.scope = nursery.cancel_scope
            nursery.start_soon(_write, session, stream, nursery.cancel_scope)
            await _read(host, session, stream)
            session.close(session.closing or "closed by the browser")
            with trio.move_on_after(1):  # let the writer send what is queued and the close frame
                await trio.sleep_forever()
            nursery.cancel_scope.cancel()
    finally:
        if session.closing is None:  # server shutting down: ask the browser to reconnect
            with trio.move_on_after(1) as scope:
                scope.shield = True
                try:
                    await stream.send_all(session.ws.send_close(CLOSE_GOING_AWAY, "server shutting down"))
                except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                    pass
        await host.detach(session)


async def _write(session: TlsWsSession, stream: trio.SSLStream[trio.abc.Stream], done: trio.CancelScope) -> None:
    """The session's one writer: sends whatever its outbox holds, until the close frame has gone."""
    try:
        while True:
            await session.wait()
            data = b"".join(frame for _, frame, _ in session.outbox.take())
            if data:
                await stream.send_all(data)
            if session.closing is not None and not session.outbox:
                break
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    done.cancel()


async def _read(host: SessionHost, session: TlsWsSession, stream: trio.SSLStream[trio.abc.Stream]) -> None:
    """Run the browser's commands in order until either side closes (commands before a close still run)."""
    while session.closing is None:
        try:
            data = await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        if not data:
            return
        session.heard = True  # a pong or any frame (the pinger's rule)
        for event in session.ws.receive_data(data):
            match event:
                case TextMessage(data=text):
                    if session.closing is None:
                        await host.run_command(session, text.decode())
                case CloseRequested() | ProtocolError():
                    session.ended(event)
                case _:
                    assert_never(event)
        session.answer()
