"""Both ports are safe to expose: connections that have not proved anything are bounded per port, and one
port full never starves the other (issue 14, item 2)."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from cometql.listen import port_budget

from ..servers import ServerProcess
from ..web.conftest import wait_for_port

BOUND = 5


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("admission"),
                        env={"COMETQL_MAX_UNAUTHENTICATED": str(BOUND), "COMETQL_MAX_HANDSHAKES": str(BOUND)}).start()
    wait_for_port(srv.ws_port)
    yield srv
    srv.stop()


def _silent(port: int, count: int) -> list[socket.socket]:
    """Connections that never say anything (a slowloris, or a scanner)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    for s in socks:
        s.setblocking(True)
    return socks


def _in_background(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except Exception as exc:  # noqa: BLE001 - reported by the test
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _info(server: ServerProcess) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.ws_port}/info", timeout=30) as resp:
        return int(resp.status)


def test_port_budget_keeps_a_reserve_for_the_other_port() -> None:
    assert port_budget(20000) == 20000 - 64 - 512  # a 19,000-browser reconnect storm fits
    assert port_budget(1024) == 1024 - 64 - 64
    assert port_budget(10) >= 1


def test_unauthenticated_mysql_connections_are_bounded_and_browsers_are_unaffected(bounded: ServerProcess) -> None:
    idle = _silent(bounded.port, BOUND)
    try:
        # the port is full of connections that never log in: a real login waits in the backlog...
        thread, result = _in_background(lambda: bounded.connect().close())
        thread.join(1.0)
        assert thread.is_alive() and not result, f"a login got in while the port was full: {result}"
        # ...while the browser port is not affected at all
        assert _info(bounded) == 200
    finally:
        for s in idle:
            s.close()
    thread.join(30)  # room again: the waiting login completes
    assert result == [None], result


def test_silent_browser_connections_are_bounded_and_backend_logins_are_unaffected(bounded: ServerProcess) -> None:
    idle = _silent(bounded.ws_port, BOUND)
    try:
        thread, result = _in_background(lambda: _info(bounded))
        thread.join(1.0)
        assert thread.is_alive() and not result, "a request got in while the port was full"
        conn = bounded.connect()  # backends still log in and publish
        with conn.cursor() as cur:
            cur.execute("INSERT INTO pipes_messages (name, event, message) VALUES ('web_x', 'e', 'still up')")
        conn.close()
    finally:
        for s in idle:
            s.close()
    thread.join(30)
    assert result == [200], result


def test_logged_in_connections_do_not_count_as_unauthenticated(bounded: ServerProcess) -> None:
    conns = [bounded.connect() for _ in range(BOUND * 2)]  # twice the bound, all logged in
    try:
        extra = bounded.connect()
        extra.close()
    finally:
        for c in conns:
            c.close()
