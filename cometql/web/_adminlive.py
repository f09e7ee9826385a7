"""The dashboard's live feed: ``/admin/live``, a WebSocket that pushes the ``/admin/stats`` JSON once a second.

Why a token and not Basic auth on the socket: browsers do not reliably attach
cached Basic credentials to a WebSocket handshake, and a page's script cannot
add headers to one. So the page, already Basic-authenticated, fetches a
short-lived token from ``/admin/token`` (see ``_admin.py``) and passes it as
``?token=``. A bad, expired or missing token still gets the 101 and then a
1008 close whose reason says which: a refused handshake would reach the page's
``onclose`` with no reason at all.

An admin socket is not a browser session: it never enters the hub, the idle
poller or the per-IP session count, so it changes none of the numbers it
shows. It is served by its connection's own task, which runs a reader
(pings, the client's close) and a pusher (one ``stats()`` frame at once, then
one a second) until either ends. The protocol's rules are the browser
sessions' ``WsConnection``; its frames are written through the connection's
stream (under a lock, the reader's pongs included), so ``wss://`` works the
same way; a client that stops reading is
dropped after ``SEND_TIMEOUT`` and never holds up anything but its own task.
A client that vanished without a word is pinged like a browser session
(``[ws] ping_interval``, the pinger's rule in ``_pinger.visit``, checked on the
push schedule) and dropped once silent for ``ping_timeout`` after a ping.
"""

from __future__ import annotations

import orjson
import trio

from ..hub import NO_CAPS
from ..node import Node
from ._admin import check_token, stats, token_of
from ._http import Request
from ._pinger import PING_FRAME, visit
from ._wsconn import NOT_AN_UPGRADE, handshake_response
from ._wsprotocol import CLOSE_GOING_AWAY, CLOSE_POLICY, TextMessage, WsConnection

__all__ = ["PUSH_INTERVAL", "AdminSocket", "serve_admin_live"]

PUSH_INTERVAL = 1.0
SEND_TIMEOUT = 10.0
MAX_CLIENT_MESSAGE = 4096  # the page sends nothing; this bounds what a client can make us buffer
_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, trio.TooSlowError)


async def serve_admin_live(node: Node, password: str, stream: trio.abc.Stream, request: Request, *,
                           ping: tuple[float, float] = (0.0, 0.0)) -> None:
    """Answer an ``/admin/live`` upgrade: a 1008 close for a bad token, else stats until either side closes."""
    reply = handshake_response(request)
    if reply is None:
        await stream.send_all(NOT_AN_UPGRADE)
        return
    ws = WsConnection(MAX_CLIENT_MESSAGE)
    refusal = check_token(password, token_of(request))
    if refusal is not None:
        await stream.send_all(reply + ws.send_close(CLOSE_POLICY, refusal))
        return
    await stream.send_all(reply)
    await AdminSocket(node, stream, ws, ping=ping).run()


class AdminSocket:
    """One open admin socket: a pusher and a reader sharing the stream under a lock."""

    caps = NO_CAPS  # never gets a heartbeat frame: the dashboard sees the stats frames
    closing: str | None = None

    def __init__(self, node: Node, stream: trio.abc.Stream, ws: WsConnection, *,
                 ping: tuple[float, float] = (0.0, 0.0)) -> None:
        self.node = node
        self.stream = stream
        self.ws = ws
        self._lock = trio.Lock()  # a pong or close reply must not interleave with a stats frame
        self._finished = False  # a close was exchanged or the stream broke: nothing more to send
        self.ping_interval, self.ping_timeout = ping  # interval 0: no pings
        self.pinged_at = trio.current_time()  # the pinger's slots (Pingable)
        self.heard = True
        self._ping_due = False

    def ping(self, extra: bytes) -> None:
        self._ping_due = True  # sent with the next stats frame, by the pusher

    def abort(self, reason: str) -> None:
        self.closing = reason

    async def run(self) -> None:
        """Serve until the client closes, the connection breaks, or the server shuts down (1001)."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._push, nursery.cancel_scope)
                await self._read()
                nursery.cancel_scope.cancel()
        finally:
            await self._going_away()

    async def _send(self, data: bytes) -> None:
        with trio.fail_after(SEND_TIMEOUT):
            async with self._lock:
                await self.stream.send_all(data)

    async def _push(self, done: trio.CancelScope) -> None:
        """Send ``stats()`` now and then every PUSH_INTERVAL, on a fixed schedule (no drift)."""
        next_at = trio.current_time()
        try:
            while True:
                frame = self.ws.send_text(orjson.dumps(stats(self.node)))
                if not frame:  # a close was sent or echoed
                    break
                if self.ping_interval > 0:
                    visit(self, trio.current_time(), self.ping_interval, self.ping_timeout, b"")
                    if self.closing is not None:  # silent since our ping: the peer is gone
                        break
                    if self._ping_due:
                        self._ping_due = False
                        frame = PING_FRAME + frame
                await self._send(frame)
                next_at += PUSH_INTERVAL
                await trio.sleep_until(max(next_at, trio.current_time()))
        except _GONE:
            pass
        self._finished = True
        done.cancel()

    async def _read(self) -> None:
        """Answer pings; return when the client closes (its close echoed), breaks a rule, or goes away.

        A text frame carries nothing for the server and is ignored.
        """
        ws = self.ws
        try:
            while not self._finished:
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                self.heard = True
                ended = any(not isinstance(event, TextMessage) for event in ws.receive_data(data))
                reply = ws.data_to_send()  # pongs, the close echo, a protocol error's close
                if ended:
                    self._finished = True
                    await self._send_quietly(reply)
                    break
                if reply:
                    await self._send(reply)
        except _GONE:
            pass
        self._finished = True

    async def _send_quietly(self, data: bytes) -> None:
        try:
            await self._send(data)
        except _GONE:
            pass

    async def _going_away(self) -> None:
        """Cancelled with the socket still open (server shutdown): ask the page to reconnect, as browsers are."""
        if self._finished:
            return
        self._finished = True
        with trio.CancelScope(shield=True):
            with trio.move_on_after(1):
                await self._send_quietly(self.ws.send_close(CLOSE_GOING_AWAY, "server shutting down"))
