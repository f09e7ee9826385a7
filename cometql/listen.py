"""TCP listeners, optionally shared by several processes (SO_REUSEPORT).

``trio.open_tcp_listeners`` has no ``reuse_port``; with ``cometql serve
--workers N`` every worker binds the same ports and the kernel spreads new
connections over them, so no process has to accept for the others.

``serve`` replaces ``trio.serve_listeners``: when accept() fails for want of
descriptors or memory (EMFILE, ...), trio logs a traceback every 0.1 s; here
``AcceptFailures`` logs one line when a burst starts and one when it ends.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import socket as stdsocket
from collections.abc import Awaitable, Callable
from typing import NoReturn

import trio

__all__ = ["ACCEPT_CAPACITY_ERRNOS", "ACCEPT_RETRY", "AcceptFailures", "Admission", "Ticket", "open_files_limit",
           "open_listeners", "port_budget", "serve"]

#: accept() errors that mean "out of descriptors or memory": wait and retry, the connection stays queued.
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
#: Seconds between two attempts while accept() fails that way.
ACCEPT_RETRY = 0.1


class AcceptFailures:
    """Logs failing accept() calls once per burst (not a line, or a traceback, per attempt)."""

    def __init__(self, log: logging.Logger, port: str) -> None:
        self._log = log
        self._port = port
        self.failed = 0
        self.total = 0  # every failure since start, for tests and diagnostics

    def fail(self, exc: OSError) -> None:
        self.failed += 1
        self.total += 1
        if self.failed == 1:
            name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            self._log.error("the %s port cannot accept connections: %s (%s); retrying every %g s, logged once "
                            "until it recovers", self._port, name, os.strerror(exc.errno or 0), ACCEPT_RETRY)

    def ok(self) -> None:
        if self.failed:
            self._log.warning("the %s port accepts connections again, after %d failed attempts",
                              self._port, self.failed)
            self.failed = 0


#: Descriptors kept for everything but client connections (store, Redis, logs, listeners, the relay).
BASE_RESERVE = 64


def open_files_limit() -> int:
    """The soft open-files limit of this process (``server.serve`` raises it to the hard one first)."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def port_budget(open_files: int) -> int:
    """How many connections one port may hold so that the *other* port always keeps a reserve: with
    20,000 open files, 19,424 each, so a 19,000-browser reconnect storm fits and still leaves 512
    descriptors for backend logins (and a flood of backend connections leaves 512 for browsers)."""
    reserve = min(512, open_files // 16)
    return max(1, open_files - BASE_RESERVE - reserve)


class Admission:
    """Bounds on one port: at most ``max_open`` connections at once, of which at most ``max_pending``
    have not proved anything yet (MySQL: not logged in; browsers: no request yet).

    At either bound the port stops accepting: new connections wait in the kernel's backlog instead of
    costing a descriptor and memory, and those already in are unaffected. Connections that never log
    in are closed by the login or request timeout, so the port opens again by itself; the wait is
    logged once per episode. ``extra`` counts connections the port holds without a handler task (the
    idle poller's WebSocket sessions).
    """

    def __init__(self, log: logging.Logger, port: str, *, max_open: int, max_pending: int,
                 extra: Callable[[], int] = lambda: 0) -> None:
        self._log = log
        self._port = port
        self.max_open = max_open
        self.max_pending = max_pending
        self._extra = extra
        self.open = 0
        self.pending = 0
        self.waits = 0  # episodes of waiting for room, for tests and diagnostics
        self._changed = trio.Event()

    def full(self) -> bool:
        return self.pending >= self.max_pending or self.open + self._extra() >= self.max_open

    async def wait_room(self) -> None:
        """Return once the port may accept another connection."""
        if not self.full():
            return
        self.waits += 1
        self._log.warning("the %s port is full (%d connections, %d not logged in yet; bounds %d and %d): new "
                          "connections wait until some leave", self._port, self.open + self._extra(),
                          self.pending, self.max_open, self.max_pending)
        while self.full():
            with trio.move_on_after(0.5):  # ``extra`` changes without telling us
                await self._changed.wait()
            self._changed = trio.Event()
        self._log.warning("the %s port accepts connections again", self._port)

    def ticket(self) -> Ticket:
        """Count a connection just accepted (as pending until ``Ticket.settle``)."""
        self.open += 1
        self.pending += 1
        return Ticket(self)

    def _left(self, pending: bool) -> None:
        self.open -= 1
        if pending:
            self.pending -= 1
        self._changed.set()

    def _settled(self) -> None:
        self.pending -= 1
        self._changed.set()


class Ticket:
    """One connection's place in its port's ``Admission``."""

    __slots__ = ("_admission", "_pending", "_open")

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._pending = True
        self._open = True

    def settle(self) -> None:
        """The connection has proved itself (logged in, sent a request): it no longer counts as pending."""
        if self._pending and self._open:
            self._pending = False
            self._admission._settled()

    def close(self) -> None:
        if self._open:
            self._open = False
            self._admission._left(self._pending)


async def serve(handler: Callable[[trio.SocketStream, Ticket], Awaitable[object]],
                listeners: list[trio.SocketListener], failures: AcceptFailures, admission: Admission) -> NoReturn:
    """``trio.serve_listeners`` with ``AcceptFailures`` and an ``Admission``; ``handler`` must close its stream,
    catch its errors and close its ticket."""
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_serve_one, handler, listener, nursery, failures, admission)
    raise AssertionError("unreachable")  # pragma: no cover


async def _serve_one(handler: Callable[[trio.SocketStream, Ticket], Awaitable[object]],
                     listener: trio.SocketListener, nursery: trio.Nursery, failures: AcceptFailures,
                     admission: Admission) -> None:
    async with listener:
        while True:
            await admission.wait_room()
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                    raise
                failures.fail(exc)
                await trio.sleep(ACCEPT_RETRY)
                continue
            failures.ok()
            nursery.start_soon(handler, stream, admission.ticket())


async def open_listeners(port: int, host: str, *, reuse_port: bool = False) -> list[trio.SocketListener]:
    if not reuse_port:
        return await trio.open_tcp_listeners(port, host=host)
    listeners = []
    for family, type_, proto, _, sockaddr in await trio.socket.getaddrinfo(
        host or None, port, type=stdsocket.SOCK_STREAM, flags=stdsocket.AI_PASSIVE
    ):
        try:
            sock = trio.socket.socket(family, type_, proto)
        except OSError as exc:
            if exc.errno == errno.EAFNOSUPPORT:  # e.g. no IPv6 on this host: as trio.open_tcp_listeners does
                continue
            raise
        try:
            sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR, 1)
            sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEPORT, 1)
            if family == stdsocket.AF_INET6:
                sock.setsockopt(stdsocket.IPPROTO_IPV6, stdsocket.IPV6_V6ONLY, 1)
            await sock.bind(sockaddr)
            sock.listen(4096)
        except BaseException:
            sock.close()
            raise
        listeners.append(trio.SocketListener(sock))
    if not listeners:
        raise OSError(errno.EAFNOSUPPORT, f"no address family of {host!r} can be bound here")
    return listeners
