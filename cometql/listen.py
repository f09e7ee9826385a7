"""TCP listeners, optionally shared by several processes (SO_REUSEPORT).

``trio.open_tcp_listeners`` has no ``reuse_port``; with ``cometql serve
--workers N`` every worker binds the same ports and the kernel spreads new
connections over them, so no process has to accept for the others.
"""

from __future__ import annotations

import errno
import socket as stdsocket

import trio

__all__ = ["open_listeners"]


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
