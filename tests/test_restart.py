"""Durable state survives a clean restart and a crash; start-up and shutdown behave.

Each test runs its own server on its own data directory (not the shared session
server), because it stops, kills and restarts it. The same SELECTs are run
before and after, and must return identical rows: users_auth, users_data,
revoked_tokens, pipes_settings, channel history (trimmed to the configured
length, oldest first), trust_ history and the offline queue of users_messages.
"""

from __future__ import annotations

import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pymysql
import pytest

from cometql.bench._ws_client import handshake_request
from cometql.wsframes import frame_header

from .servers import PASSWORD, ServerProcess

DEV = 42
CHANNEL = "history3"
TRUST = "trust_audit"
OFFLINE_USER = 9

SETUP = [
    f"INSERT INTO users_messages (id, event, message) VALUES ({OFFLINE_USER}, 'ev', 'queued one')",
    f"INSERT INTO users_messages (id, event, message) VALUES ({OFFLINE_USER}, 'ev', 'queued ''two''')",
    "INSERT INTO users_auth (id, hash) VALUES (3, 'authhash3')",
    "INSERT INTO users_data (id, data) VALUES (3, '{\"nick\": \"ann\"}')",
    "INSERT INTO revoked_tokens (token) VALUES ('revoked.token.one')",
    f"INSERT INTO pipes_settings (name, length) VALUES ('{CHANNEL}', 3)",
    *[f"INSERT INTO pipes_messages (name, event, message) VALUES ('{CHANNEL}', 'ev', 'msg {n}')" for n in range(1, 6)],
    f"INSERT INTO pipes_messages (name, event, message) VALUES ('{TRUST}', 'ev', 'trusted')",
]

CHECKS = [
    f"SELECT * FROM users_messages WHERE id = {OFFLINE_USER}",
    "SELECT * FROM users_auth WHERE id = 3",
    "SELECT * FROM users_data WHERE id = 3",
    "SELECT * FROM revoked_tokens",
    f"SELECT * FROM pipes_settings WHERE name = '{CHANNEL}'",
    f"SELECT * FROM pipes_messages WHERE name = '{CHANNEL}'",
    f"SELECT * FROM pipes_messages WHERE name = '{TRUST}'",
]


def run_all(server: ServerProcess, statements: list[str]) -> list[list[tuple[str, ...]]]:
    conn = server.connect(DEV)
    try:
        with conn.cursor() as cur:
            results = []
            for sql in statements:
                cur.execute(sql)
                results.append([tuple(r) for r in cur.fetchall()])
            return results
    finally:
        conn.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def own_server(data_dir: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(data_dir).start()
    yield srv
    if srv.alive:
        srv.kill()


def populate(server: ServerProcess) -> list[list[tuple[str, ...]]]:
    """Run SETUP (every INSERT acknowledged) and return the CHECKS rows, sanity-checked."""
    before = run_all(server, SETUP + CHECKS)[len(SETUP):]  # one connection: the kill follows within ms
    queue, auth, data, revoked, settings, history, trust = before
    assert [r[2:] for r in queue] == [("ev", "queued one"), ("ev", "queued 'two'")]
    assert auth == [("3", "authhash3")]
    assert data == [("3", '{"nick": "ann"}')]
    assert revoked == [("revoked.token.one",)]
    assert settings == [(CHANNEL, "3")]
    # pipes_messages columns: id, time, name, index, event, message, user_id
    assert [(r[2], r[3], r[5]) for r in history] == [(CHANNEL, "0", "msg 3"), (CHANNEL, "1", "msg 4"),
                                                     (CHANNEL, "2", "msg 5")]
    assert [(r[2], r[5]) for r in trust] == [(TRUST, "trusted")]
    return before


def restart(server: ServerProcess, data_dir: Path, how: str) -> ServerProcess:
    if how == "sigterm":
        assert server.stop() == 0
    else:
        server.kill()
    return ServerProcess(data_dir).start()


@pytest.mark.parametrize("how", ["sigterm", "kill -9"])
def test_state_survives_restart(own_server: ServerProcess, data_dir: Path, how: str) -> None:
    before = populate(own_server)
    again = restart(own_server, data_dir, how)
    try:
        assert run_all(again, CHECKS) == before
    finally:
        again.stop()


def test_state_survives_two_restarts_and_keeps_trimming(own_server: ServerProcess, data_dir: Path) -> None:
    """After a restart the history length still applies: a new message pushes the oldest out."""
    populate(own_server)
    again = restart(own_server, data_dir, "kill -9")
    try:
        run_all(again, [f"INSERT INTO pipes_messages (name, event, message) VALUES ('{CHANNEL}', 'ev', 'msg 6')"])
        third = restart(again, data_dir, "sigterm")
    finally:
        if again.alive:
            again.kill()
    try:
        (history,) = run_all(third, [f"SELECT * FROM pipes_messages WHERE name = '{CHANNEL}'"])
        assert [r[5] for r in history] == ["msg 4", "msg 5", "msg 6"]
    finally:
        third.stop()


def test_sigterm_exits_zero_promptly_with_a_client_connected(own_server: ServerProcess) -> None:
    idle = own_server.connect(DEV)
    try:
        t0 = time.monotonic()
        code = own_server.stop(signal.SIGTERM, timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        idle.close()
    assert code == 0, own_server.output
    assert elapsed < 5


def test_public_address_with_the_example_password_is_refused(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "public", host="0.0.0.0", password=PASSWORD)
    with pytest.raises(RuntimeError, match="exited early") as exc:
        srv.start()
    assert srv.proc is not None and srv.proc.returncode not in (0, None)
    assert "password" in str(exc.value)


def test_public_address_with_another_password_is_accepted(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "public", host="0.0.0.0", password="a-real-Secret-42").start()
    try:
        conn = pymysql.connect(host="127.0.0.1", port=srv.port, user="root", password="a-real-Secret-42",
                               database="CometQL_v1", connect_timeout=5, read_timeout=10)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchall() == ((1,),)
        conn.close()
    finally:
        assert srv.stop() == 0


#: Sessions held through the shutdown below: every other one a logged-in user.
SESSIONS = 1000
FIRST_USER = 101
CLOSE = 0x8


class _Page:
    """One browser session on a plain socket (blocking, every read bounded): the wire as the library sees it."""

    def __init__(self, server: ServerProcess, number: int, user_id: int, key: str, caps: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.ws_port), timeout=15)
        self.buf = bytearray()
        self.sock.sendall(handshake_request("127.0.0.1", server.ws_port, DEV, f"shutdown{number:024d}",
                                            str(user_id), key, caps=caps))
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.buf = bytearray(rest)
        opcode, payload = self.frame()
        self.info = orjson.loads(payload)
        assert opcode == 0x1 and self.info["event"] == "serverInfo"

    def _more(self) -> None:
        data = self.sock.recv(65536)
        assert data, "the server closed the connection without a close frame"
        self.buf += data

    def frame(self) -> tuple[int, bytes]:
        while (header := frame_header(self.buf, 0)) is None or len(self.buf) < sum(header):
            self._more()
        head, length = header
        opcode, payload = self.buf[0] & 0x0F, bytes(self.buf[head:head + length])
        del self.buf[:head + length]
        return opcode, payload

    def goodbye(self) -> tuple[int, str]:
        """The close frame's code and reason (frames before it are skipped)."""
        while True:
            opcode, payload = self.frame()
            if opcode == CLOSE:
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def test_sigterm_with_many_sessions_stops_accepting_then_says_goodbye_and_records_last_seen(
        own_server: ServerProcess, data_dir: Path) -> None:
    """SIGTERM with 1,000 sessions (half logged in): the port refuses new connections before any session
    is told goodbye, every session gets the 1001 close frame, every user's last-seen time is stored, and
    a message queued for a user (delivered, not acknowledged) stays queued."""
    users = [FIRST_USER + i for i in range(SESSIONS // 2)]
    conn = own_server.connect(DEV)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO users_auth (id, hash) VALUES " + ", ".join(f"({u}, 'key{u}')" for u in users))
            cur.execute(f"INSERT INTO users_messages (id, event, message) VALUES ({FIRST_USER}, 'ev', 'kept')")
    finally:
        conn.close()
    pages = []
    try:
        for i in range(SESSIONS):
            user = users[i // 2] if i % 2 == 0 else 0
            pages.append(_Page(own_server, i, user, f"key{user}" if user else "", "ack" if user else ""))
        assert sum(bool(p.info.get("authorized")) for p in pages) == len(users)
        (online,) = run_all(own_server, [f"SELECT * FROM users_time WHERE id IN ({', '.join(map(str, users))})"])
        assert {row[1] for row in online} == {"0"}  # all online
        before = int(time.time())
        assert own_server.proc is not None
        own_server.proc.send_signal(signal.SIGTERM)
        assert pages[0].goodbye() == (1001, "server shutting down")
        with pytest.raises(ConnectionRefusedError):  # the listener was closed before any goodbye
            socket.create_connection(("127.0.0.1", own_server.ws_port), timeout=15).close()
        assert all(page.goodbye() == (1001, "server shutting down") for page in pages[1:])
        out, _ = own_server.proc.communicate(timeout=60)  # a hang guard: a second signal would exit at once
        assert own_server.proc.returncode == 0, out
    finally:
        for page in pages:
            page.sock.close()
    again = ServerProcess(data_dir).start()
    try:
        last_seen, queued = run_all(again, [
            f"SELECT * FROM users_time WHERE id IN ({', '.join(map(str, users))})",
            f"SELECT * FROM users_messages WHERE id = {FIRST_USER}"])
    finally:
        again.stop()
    assert sorted(int(row[0]) for row in last_seen) == users
    assert all(int(row[1]) >= before for row in last_seen)  # offline, seen at the shutdown
    assert [row[-1] for row in queued] == ["kept"]
