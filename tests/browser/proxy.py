"""A loopback HTTP proxy that refuses WebSocket upgrades, like a corporate proxy that breaks them.

Plain HTTP requests (pages, /cometql.js, long-poll) are relayed to the server
byte for byte; a connection whose first request asks for ``Upgrade: websocket``
gets 403 and is closed. A page loaded through it sees its WebSocket fail to
open, which is what must make the library fall back to long-poll. Chromium
opens a dedicated connection for each WebSocket handshake, so looking at the
first request of each connection is enough.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from types import TracebackType

MAX_HEAD = 64 * 1024


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(socketserver.BaseRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(60)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
            chunk = client.recv(65536)
            if not chunk:
                return
            head += chunk
        if b"upgrade: websocket" in head.lower():
            self.server.refused += 1
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        upstream = socket.create_connection(self.server.upstream, timeout=60)
        upstream.sendall(head)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join(timeout=60)


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.refused = 0


class NoWebSocketProxy:
    """``with NoWebSocketProxy((host, port)) as proxy:`` pages at ``proxy.base_url``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._server = _ProxyServer(upstream)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def refused_upgrades(self) -> int:
        return self._server.refused

    def __enter__(self) -> NoWebSocketProxy:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
