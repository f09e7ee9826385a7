"""WebSocket sessions (trio-websocket), on CppComet's URL forms.

After the handshake: authorization and ``serverInfo``, the offline queue, then
two loops — commands from the browser go to the hub, frames queued for the
session go out. A bad URL gets CppComet's error frame and a close; oversized
messages are closed by trio-websocket with 1009; pings get pongs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
import trio_websocket
from trio_websocket import ConnectionClosed, WebSocketConnection

from ..hub import ConnInfo
from ..hub import _frames as frames
from ..hub._browser import handle_command
from ._http import PrefixedStream, Request, request_head
from ._params import ParamsError, parse_params, ws_tail
from ._session import BrowserSession

if TYPE_CHECKING:
    from ._server import WebFront

__all__ = ["serve_websocket"]

MAX_MESSAGE = 65535  # CppComet's client frame limit
CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001
CLOSE_GRACE = 5.0  # seconds a closing session's writer gets to flush and send its close frame


async def _refuse(ws: WebSocketConnection, code: int, text: str, now: int) -> None:
    error = {"error": text, "error_code": code, "info": "Closed due to error. See last message."}
    try:
        await ws.send_message(frames.sys_frame("error", error, now).decode())
        await ws.aclose(CLOSE_POLICY, text[:120])
    except ConnectionClosed:
        pass


async def _writer(ws: WebSocketConnection, session: BrowserSession, done: trio.CancelScope) -> None:
    """Send whatever the session queued; close when the hub or a bound says so."""
    try:
        while True:
            await session.wait()
            for frame in session.take_all():
                await ws.send_message(frame.decode())
            if session.closing is not None:
                await ws.aclose(CLOSE_POLICY, session.closing[:120])
                return
    except ConnectionClosed:
        done.cancel()


async def _cut_off(session: BrowserSession, done: trio.CancelScope) -> None:
    """End a closing session whose writer is stuck (a peer that stopped reading never drains
    its socket, so the close frame can never be sent): it must leave the hub anyway."""
    await session.closed.wait()
    await trio.sleep(CLOSE_GRACE)
    done.cancel()


async def serve_websocket(front: WebFront, stream: trio.SocketStream, request: Request, info: ConnInfo) -> None:
    engine = front.engine
    async with trio.open_nursery() as nursery:
        ws_request = await trio_websocket.wrap_server_stream(
            nursery, PrefixedStream(stream, request_head(request)), max_message_size=MAX_MESSAGE
        )
        ws = await ws_request.accept()
        try:
            if not front.origin_ok(info.origin or None):
                await _refuse(ws, 423, "Error code 423(Access denied, Request from unauthorized domain.)", engine.now())
                return
            try:
                # the target, not the path: /ws/?sesion=... carries the parameters after the "?"
                params = parse_params(ws_tail(request.target) or "", dev_index_size=front.config.dev_index_size)
            except ParamsError as exc:
                await _refuse(ws, exc.code, exc.text, engine.now())
                return
            info.uuid = params.uuid
            session = BrowserSession(params.dev_id, info, transport="websocket",
                                     max_queued_bytes=front.config.max_queued_bytes)
            await front.attach(session, params)
            try:
                with trio.CancelScope() as done:
                    nursery.start_soon(_writer, ws, session, done)
                    nursery.start_soon(_cut_off, session, done)
                    await _reader(front, ws, session)
            except trio.Cancelled:
                with trio.move_on_after(1) as scope:  # server shutdown: tell the browser to reconnect
                    scope.shield = True
                    await ws.aclose(CLOSE_GOING_AWAY, "server shutting down")
                raise
            finally:
                await front.detach(session)
        finally:
            nursery.cancel_scope.cancel()


async def _reader(front: WebFront, ws: WebSocketConnection, session: BrowserSession) -> None:
    engine = front.engine
    try:
        while session.closing is None:
            message = await ws.get_message()
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            await engine.apply(handle_command(engine.hub, session, text, engine.now()))
    except ConnectionClosed:
        return

