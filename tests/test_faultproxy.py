"""The fault proxy itself: each fault does what the delivery tests rely on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from cometql.bench._faultproxy import FaultProxy


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[:2]
    server.close()


def _roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_passes_bytes_through(echo: tuple[str, int]) -> None:
    with FaultProxy(echo) as proxy, socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        assert _roundtrip(s, b"hello") == b"hello"
        assert proxy.accepted == 1


def test_cut_resets_open_connections_and_lets_new_ones_through(echo: tuple[str, int]) -> None:
    with FaultProxy(echo) as proxy:
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        assert _roundtrip(s, b"a") == b"a"
        proxy.cut()
        with pytest.raises(OSError):
            s.sendall(b"b")
            if not s.recv(10):  # EOF counts as the cut too
                raise ConnectionResetError
        s.close()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s2:
            assert _roundtrip(s2, b"c") == b"c"


def test_cut_reaches_a_silent_black_holed_peer(echo: tuple[str, int]) -> None:
    """A page that sends nothing during a black-hole still sees the cut (its proxy thread sits in recv)."""
    with FaultProxy(echo) as proxy:
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        assert _roundtrip(s, b"a") == b"a"
        proxy.blackhole()
        proxy.heal()
        proxy.cut()
        s.settimeout(5)
        try:
            got = s.recv(10)
        except ConnectionResetError:
            got = b""
        except TimeoutError:
            pytest.fail("the cut never reached a peer that was not sending")
        assert got == b""
        s.close()


def test_blackhole_is_silence_not_an_error_and_heal_is_for_new_connections(echo: tuple[str, int]) -> None:
    with FaultProxy(echo) as proxy:
        old = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        assert _roundtrip(old, b"a") == b"a"
        proxy.blackhole()
        old.settimeout(0.5)
        old.sendall(b"lost")  # no error: the bytes go nowhere
        with pytest.raises(socket.timeout):
            old.recv(10)
        proxy.heal()
        old.sendall(b"still lost")
        with pytest.raises(socket.timeout):
            old.recv(10)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as new:
            assert _roundtrip(new, b"ok") == b"ok"
        old.close()


def test_delay_holds_each_chunk_in_order(echo: tuple[str, int]) -> None:
    with FaultProxy(echo) as proxy, socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        proxy.delay(0.2)
        start = time.monotonic()
        assert _roundtrip(s, b"abc") == b"abc"
        assert time.monotonic() - start >= 0.4  # 0.2 s each way, a lower bound: holds on a busy machine
