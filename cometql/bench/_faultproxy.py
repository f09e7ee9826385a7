"""A loopback TCP proxy that injects network faults: cut, black-hole, delay, heal.

Delivery promises are checked through it (spec, "Faults are tested"): a test
points a browser or a client at ``proxy.port`` instead of the server's port and
then breaks the network under it:

- ``cut()``: every open connection is reset (RST to both sides), as when a NAT
  box or a proxy drops its state; new connections are let through.
- ``blackhole()``: every byte in both directions is dropped from now on, and the
  sockets stay open (a mobile network gone, a cable pulled): nobody sees an
  error, only silence. New connections are accepted and black-holed too.
- ``heal()``: new connections work again. Connections that were black-holed stay
  dead (their lost bytes would corrupt the stream): the ends must notice by
  themselves (pings, heartbeats) or be ``cut()``.
- ``delay(seconds)``: every chunk is held that long before it is forwarded, in
  order, in both directions.

Threads, not trio: the Chromium tests are synchronous, and the proxy must not
run on the event loop of the server or client it is testing. Calls return at
once and are safe from any thread.
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
import time
from types import TracebackType

__all__ = ["FaultProxy"]


def _reset(sock: socket.socket) -> None:
    """Close with RST: SO_LINGER on, timeout 0. ``shutdown`` first: a thread blocked in ``recv`` on the
    socket keeps it alive past ``close`` (so no RST would leave while its peer stays silent); shutdown
    wakes that thread."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class _Link:
    """One proxied connection: client socket, upstream socket, and their state."""

    def __init__(self, client: socket.socket, upstream: socket.socket, dead: bool) -> None:
        self.client = client
        self.upstream = upstream
        self.dead = dead  # black-holed: bytes are read and dropped, forever
        self.closed = False

    def reset(self) -> None:
        if not self.closed:
            self.closed = True
            _reset(self.client)
            _reset(self.upstream)


class FaultProxy:
    """``with FaultProxy(("127.0.0.1", server_port)) as proxy:`` connect to ``proxy.port``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._blackholed = False
        self._delay = 0.0
        self._stopped = False
        #: connections accepted so far (a reconnecting page adds to it)
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)

    # ------------------------------------------------------------------ faults

    def cut(self) -> None:
        """Reset every open connection (both ends see ECONNRESET or EOF)."""
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.reset()

    def blackhole(self) -> None:
        """Drop every byte of every connection, open or new, without closing anything."""
        with self._lock:
            self._blackholed = True
            for link in self._links:
                link.dead = True

    def heal(self) -> None:
        """New connections work again; black-holed ones stay dead."""
        with self._lock:
            self._blackholed = False

    def delay(self, seconds: float) -> None:
        """Hold every chunk ``seconds`` before forwarding it (0: no delay)."""
        with self._lock:
            self._delay = seconds

    @property
    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for link in self._links if not link.closed)

    # ---------------------------------------------------------------- plumbing

    def _accept_loop(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                link = _Link(client, upstream, self._blackholed)
                self._links.append(link)
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                chunks: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
                threading.Thread(target=self._read, args=(link, src, chunks), daemon=True).start()
                threading.Thread(target=self._write, args=(link, dst, chunks), daemon=True).start()

    def _read(self, link: _Link, src: socket.socket, chunks: queue.Queue[tuple[float, bytes] | None]) -> None:
        try:
            while data := src.recv(65536):
                if not link.dead:
                    chunks.put((time.monotonic() + self._delay, data))
        except OSError:
            pass
        chunks.put(None)

    def _write(self, link: _Link, dst: socket.socket, chunks: queue.Queue[tuple[float, bytes] | None]) -> None:
        while (item := chunks.get()) is not None:
            due, data = item
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if link.dead:
                continue
            try:
                dst.sendall(data)
            except OSError:
                break
        if not link.dead and not link.closed:  # the other side ended: pass the EOF on
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    # ----------------------------------------------------------------- lifetime

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stopped = True
        self._listener.close()
        self.cut()
