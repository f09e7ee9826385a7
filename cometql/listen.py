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
import socket as stdsocket
from collections.abc import Awaitable, Callable
from typing import NoReturn

import trio

__all__ = ["ACCEPT_CAPACITY_ERRNOS", "ACCEPT_RETRY", "AcceptFailures", "open_listeners", "serve"]

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


async def serve(handler: Callable[[trio.SocketStream], Awaitable[object]], listeners: list[trio.SocketListener],
                failures: AcceptFailures) -> NoReturn:
    """``trio.serve_listeners`` with ``AcceptFailures``; ``handler`` must close its stream and catch its errors."""
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_serve_one, handler, listener, nursery, failures)
    raise AssertionError("unreachable")  # pragma: no cover


async def _serve_one(handler: Callable[[trio.SocketStream], Awaitable[object]], listener: trio.SocketListener,
                     nursery: trio.Nursery, failures: AcceptFailures) -> None:
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                    raise
                failures.fail(exc)
                await trio.sleep(ACCEPT_RETRY)
                continue
            failures.ok()
            nursery.start_soon(handler, stream)


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
