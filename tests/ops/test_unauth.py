"""Connections that never log in (issue 14, item 2): they cost a descriptor and a little memory
for a bounded time only, on both ports.

- MySQL port: ``login_timeout`` from connect to logged in; a packet over 64 KiB before the
  login ends the connection (ERR 1153) without the server reading the rest of it.
- Browser port: ``request_timeout`` for the first request; a long-poll request, once read,
  is still held its full ``longpoll_timeout``.
- accept() failing for want of descriptors is logged once per burst, not a traceback per
  attempt, and the server recovers once the idle connections are timed out.

Waits are bounded by generous hang guards only (the machine may be loaded); nothing asserts
that a timeout fired *soon*, only that it fired (or, for the long-poll hold, not too early).
"""

from __future__ import annotations

import http.client
import json
import logging
import resource
import socket
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from cometql.listen import AcceptFailures, Admission, Ticket, serve

from ..mysql._raw import RawClient, parse_err
from ..servers import ServerProcess
from ..web.conftest import wait_for_port

LOGIN_TIMEOUT = 1.5
REQUEST_TIMEOUT = 1.5
LONGPOLL_TIMEOUT = 4.0
HANG_GUARD = 30.0  # a timeout that should fire after ~1.5 s must have fired by then
ER_NET_PACKET_TOO_LARGE = 1153


def _server(data_dir: Path, **env: str) -> ServerProcess:
    srv = ServerProcess(data_dir, env={
        "COMETQL_LOGIN_TIMEOUT": str(LOGIN_TIMEOUT),
        "COMETQL_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
        "COMETQL_LONGPOLL_TIMEOUT": str(LONGPOLL_TIMEOUT),
        **env,
    }).start()
    wait_for_port(srv.ws_port)
    return srv


@pytest.fixture(scope="module")
def timeouts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = _server(tmp_path_factory.mktemp("cometql-unauth"))
    yield srv
    if srv.alive:
        srv.stop()


def _closed_by_server(sock: socket.socket, guard: float = HANG_GUARD) -> bytes:
    """Read until the server closes (EOF or reset); returns what it sent. Fails if it never does."""
    sock.settimeout(guard)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {guard} s")
    return received


# ------------------------------------------------------------------ MySQL port


def test_silent_mysql_connection_is_closed_and_logins_go_on(timeouts_server: ServerProcess) -> None:
    srv = timeouts_server
    silent = socket.create_connection((srv.host, srv.port))
    greeted = RawClient(srv.host, srv.port)
    greeted.greeting()  # reads the greeting, then sends nothing
    try:
        # meanwhile a real login works, and keeps working past the login timeout once logged in
        conn = srv.connect(7)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchall() == ((1,),)
        received = _closed_by_server(silent)
        assert received[4:5] == b"\x0a"  # only the greeting (HandshakeV10) came before the close
        _closed_by_server(greeted.sock)
        with conn.cursor() as cur:  # a logged-in connection has no such limit
            cur.execute("SELECT 2")
            assert cur.fetchall() == ((2,),)
        conn.close()
    finally:
        silent.close()
        greeted.close()


def test_oversized_login_packet_is_refused_unread(timeouts_server: ServerProcess) -> None:
    """A handshake response announcing 16 MiB: ERR 1153 after the header, not a 16 MiB buffer."""
    srv = timeouts_server
    with RawClient(srv.host, srv.port) as client:
        client.greeting()
        client.send_raw(struct.pack("<I", 0xFFFFFF | 1 << 24) + b"x" * 1000)  # fits in one read: a clean close
        err = client.err_or_close()
        assert err is not None and err.code == ER_NET_PACKET_TOO_LARGE, err
    # with most of a big payload on its way the server still only closes (it reads at most a few chunks)
    with RawClient(srv.host, srv.port) as client:
        client.greeting()
        try:
            client.send_raw(struct.pack("<I", 0xFFFFFF | 1 << 24) + b"x" * 400_000)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: what we want
        else:
            _closed_by_server(client.sock)
    assert srv.alive
    conn = srv.connect(7)
    conn.close()


def test_logged_in_connection_keeps_large_packets(timeouts_server: ServerProcess) -> None:
    """After the login the cap follows max_query_size: a 200 KiB statement gets its ERR, not a close."""
    srv = timeouts_server
    with RawClient(srv.host, srv.port) as client:
        assert client.login("7", srv.password)[:1] == b"\x00"
        reply = client.query("SELECT '" + "x" * 200_000 + "'")
        assert parse_err(reply) is None or parse_err(reply).code != ER_NET_PACKET_TOO_LARGE  # type: ignore[union-attr]
        client.drain_response(reply)
        assert client.ping()


# ---------------------------------------------------------------- browser port


def test_silent_browser_connection_is_closed(timeouts_server: ServerProcess) -> None:
    srv = timeouts_server
    with socket.create_connection((srv.host, srv.ws_port)) as silent:
        assert _closed_by_server(silent) == b""
    with socket.create_connection((srv.host, srv.ws_port)) as trickle:  # half a request head, then nothing
        trickle.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n")
        assert _closed_by_server(trickle) == b""


def test_longpoll_is_held_past_the_request_timeout(timeouts_server: ServerProcess) -> None:
    srv = timeouts_server
    web = http.client.HTTPConnection(srv.host, srv.ws_port, timeout=HANG_GUARD)
    try:
        body = f"sesion=&myid=0&devid=7&v=4.08&uuid={uuid.uuid4().hex}&api=js"
        web.request("POST", "/lp/connect", body, {"Content-Type": "text/plain"})
        reply = web.getresponse()
        assert reply.status == 200
        sid = json.loads(reply.read())["sid"]
        web.request("GET", f"/lp/poll?sid={sid}&cursor=0")  # same keep-alive connection; the serverInfo frame
        reply = web.getresponse()
        assert reply.status == 200
        cursor = json.loads(reply.read())["cursor"]
        started = time.monotonic()
        web.request("GET", f"/lp/poll?sid={sid}&cursor={cursor}")  # nothing to send: held
        reply = web.getresponse()
        assert reply.status == 200
        assert json.loads(reply.read())["frames"] == []
        assert time.monotonic() - started >= LONGPOLL_TIMEOUT - 0.5 > REQUEST_TIMEOUT  # held, not cut short
    finally:
        web.close()


# ------------------------------------------------------- out of descriptors


def test_descriptor_exhaustion_logs_once_and_recovers(tmp_path: Path) -> None:
    """With a low open-files limit, idle anonymous connections fill it: accept() fails with EMFILE,
    logged once per burst (no traceback storm); the login timeout frees the descriptors again."""
    srv = _server(tmp_path, COMETQL_LOG_LEVEL="warning")
    try:
        assert srv.proc is not None
        resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (128, 128))
        idle = []
        try:
            for _ in range(200):
                idle.append(socket.create_connection((srv.host, srv.port), timeout=5))
            time.sleep(1)  # accept() fails for a while
            deadline = time.monotonic() + HANG_GUARD
            while True:  # the queued ones are accepted and timed out as descriptors free up
                try:
                    conn = srv.connect(7)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            conn.close()
        finally:
            for sock in idle:
                sock.close()
    finally:
        srv.stop()
    out = srv.output
    assert "cannot accept connections: EMFILE" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert out.count("cannot accept connections") <= out.count("accepts connections again") + 1, out[-3000:]


class _FailingListener:
    """accept() fails with EMFILE ``failures`` times, then hands out one stream, then waits for ever."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.accepted = 0

    async def __aenter__(self) -> _FailingListener:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def accept(self) -> object:
        if self.failures:
            self.failures -= 1
            raise OSError(24, "Too many open files")
        if self.accepted:
            await trio.sleep_forever()
        self.accepted += 1
        return object()


async def test_accept_failures_are_logged_once_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.accept")
    failures = AcceptFailures(log, "test")
    handled = trio.Event()

    async def handler(stream: object, ticket: Ticket) -> None:
        ticket.close()
        handled.set()

    admission = Admission(log, "test", max_open=10, max_pending=10)
    with caplog.at_level(logging.WARNING, logger="test.accept"), trio.fail_after(HANG_GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, handler, [_FailingListener(12)], failures, admission)  # type: ignore[arg-type]
            await handled.wait()
            nursery.cancel_scope.cancel()
    assert failures.total == 12 and failures.failed == 0
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "cannot accept connections: EMFILE" in messages[0]
    assert "after 12 failed attempts" in messages[1]
    assert all(r.exc_info is None for r in caplog.records)
