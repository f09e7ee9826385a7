"""Plain WebSocket handshakes without a task per connection.

A browser's connection costs the server most at its start: with a task per
connection (spawn, cancel scopes, a trio stream, a duplicated descriptor) trio's
machinery was about 40 % of a handshake's CPU. Browsers open one connection per
session and send only the upgrade request, in one segment; so, on a port
without TLS, the accept loop hands every new socket here instead: one task and
one private epoll set (as the idle poller, ``_idle.py``) wait for the request
bytes of all of them. When they arrive, a complete upgrade on a WebSocket path
(``quick_upgrade``) is answered right there: the session is built on the
accepted socket itself (``open_websocket``: Origin, parameters, sessions per
address), opened in the hub without awaiting when the store is not needed
(``attach_nowait``), and handed to the idle poller. The 101 reply leaves with
serverInfo in one non-blocking ``send``. A burst is one wake-up: every socket
epoll reports is served in the same pass.

Anything else (a request split over segments, another route, long-poll, a
malformed or oversized request) goes to the task path with the bytes already
read (``WebFront.handle``), which answers exactly as before. An opening that
must await the store gets a task of its own. Limits are kept: the connection's
``Ticket`` is settled when its first bytes arrive and closed once the session
is in the idle poller (or the connection is gone); a connection silent for
``request_timeout`` is closed (checked a few times per timeout, so at most a
quarter of it late).
"""

from __future__ import annotations

import functools
import logging
import select
import socket as stdsocket
from typing import Protocol

import trio

from ..hub import ConnInfo, Effect
from ..listen import Ticket
from ._host import SessionHost
from ._http import Request, quick_upgrade
from ._params import ConnectParams, ws_tail
from ._session import Session
from ._wsconn import WsSession, open_websocket

__all__ = ["HandshakeHost", "Handshaker"]

log = logging.getLogger("cometql.web")

_EVENTS = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLONESHOT
#: The first read of a request (as the task path's): a request head is at most 16 KB (``_http.MAX_HEAD``).
_READ = 65536


class HandshakeHost(SessionHost, Protocol):
    """What the handshaker needs from the front, beyond a transport's ``SessionHost``."""

    def conn_info(self, peer: str, request: Request) -> ConnInfo: ...

    def attach_nowait(self, session: Session, params: ConnectParams) -> list[Effect] | None: ...

    async def opened(self, session: Session, effects: list[Effect]) -> None: ...

    def adopt(self, session: WsSession) -> None:
        """Hand an open session to the idle poller."""
        ...

    async def handle(self, stream: trio.abc.Stream, tls: bool = True, ticket: Ticket | None = None,
                     first: bytes = b"") -> None:
        """The task path, for a connection whose first bytes (``first``) were already read."""
        ...


class _Waiting:
    """A connection accepted whose request has not arrived yet."""

    __slots__ = ("sock", "ticket", "deadline")

    def __init__(self, sock: stdsocket.socket, ticket: Ticket, deadline: float) -> None:
        self.sock = sock
        self.ticket = ticket
        self.deadline = deadline


class Handshaker:
    """Every plain connection of the browser port until its request arrived (see the module)."""

    def __init__(self, host: HandshakeHost) -> None:
        self.host = host
        self._epoll = select.epoll()
        self._waiting: dict[int, _Waiting] = {}
        #: Handshakes served here, and connections passed to the task path (for tests and diagnostics).
        self.quick = 0
        self.handed_over = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def take(self, sock: stdsocket.socket, ticket: Ticket) -> None:
        """A connection just accepted (non-blocking): served now if its request is already there."""
        try:
            data = sock.recv(_READ)
        except (BlockingIOError, InterruptedError):
            fd = sock.fileno()
            self._waiting[fd] = _Waiting(sock, ticket, trio.current_time() + self.host.options.request_timeout)
            self._epoll.register(fd, _EVENTS)
            return
        except OSError:
            data = b""
        self._arrived(sock, ticket, data)

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._expire)
                while True:
                    await trio.lowlevel.wait_readable(self._epoll.fileno())
                    for fd, _ in self._epoll.poll(0, 1024):
                        waiting = self._waiting.pop(fd, None)
                        if waiting is None:
                            continue
                        # no unregister: one-shot, the entry is disabled now, and it goes when the socket
                        # is closed (a syscall saved per connection; the session's poller has its own set)
                        try:
                            data = waiting.sock.recv(_READ)
                        except (BlockingIOError, InterruptedError):  # a spurious wake-up: wait again
                            self._waiting[fd] = waiting
                            self._epoll.modify(fd, _EVENTS)
                            continue
                        except OSError:
                            data = b""
                        self._arrived(waiting.sock, waiting.ticket, data)
        finally:
            for waiting in self._waiting.values():
                waiting.sock.close()
                waiting.ticket.close()
            self._waiting.clear()
            self._epoll.close()

    async def _expire(self) -> None:
        """Close connections whose request did not arrive within ``request_timeout`` (slow loris)."""
        timeout = self.host.options.request_timeout
        while True:
            await trio.sleep(max(0.05, min(1.0, timeout / 4)))
            now = trio.current_time()
            late = [fd for fd, waiting in self._waiting.items() if waiting.deadline <= now]
            for fd in late:
                waiting = self._waiting.pop(fd)
                waiting.sock.close()  # which takes it out of the epoll set
                waiting.ticket.close()

    def _arrived(self, sock: stdsocket.socket, ticket: Ticket, data: bytes) -> None:
        if not data:  # the peer left (or reset) before sending a request
            sock.close()
            ticket.close()
            return
        ticket.settle()  # a request is arriving: no longer a handshake the port waits on
        request = quick_upgrade(data)
        if request is None or ws_tail(request.path) is None:
            self._hand_over(sock, ticket, data)
            return
        self.quick += 1
        try:
            self._upgrade(sock, ticket, request)
        except Exception:  # one broken connection must not take the port down
            log.exception("browser connection failed")
            sock.close()
            ticket.close()

    def _upgrade(self, sock: stdsocket.socket, ticket: Ticket, request: Request) -> None:
        host = self.host
        try:
            peer = str(sock.getpeername()[0])
        except (OSError, IndexError):
            peer = ""
        opened = open_websocket(host, sock, request, host.conn_info(peer, request))
        if opened is None:  # refused, and answered
            ticket.close()
            return
        session, params = opened
        effects = host.attach_nowait(session, params)
        if effects is None:
            host.adopt(session)
            ticket.close()  # the session now counts in the idle poller (``Admission.extra``)
        else:
            host.spawn(functools.partial(self._open, session, effects, ticket))

    async def _open(self, session: WsSession, effects: list[Effect], ticket: Ticket) -> None:
        """An opening that awaits the store (a task: the other handshakes go on meanwhile)."""
        host = self.host
        try:
            with trio.move_on_after(host.options.longpoll_timeout + 30):  # as the task path's bound
                await host.opened(session, effects)
                host.adopt(session)
                return
            session.release()  # the store did not answer: the browser reconnects
            await host.detach(session)
        except Exception:
            log.exception("browser connection failed")
            session.release()
        finally:
            ticket.close()

    def _hand_over(self, sock: stdsocket.socket, ticket: Ticket, data: bytes) -> None:
        """Not a plain upgrade in one piece: the task path serves it, from the bytes already read."""
        self.handed_over += 1
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        self.host.spawn(functools.partial(self.host.handle, stream, True, ticket, data))
