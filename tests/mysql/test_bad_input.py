"""Bad bytes on the MySQL port get an ERR packet or a clean close, and hurt nobody else.

Every case talks to the shared session server through a raw socket (no driver
would send these bytes) and must see, within a timeout, either an ERR packet or
the server closing the connection. Afterwards the ``witnesses`` must be fine: a
PyMySQL connection opened *before* the bad input still works, a fresh one
works, and a users_auth row stored before is still there.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pymysql
import pytest

from ..servers import ServerProcess
from ._raw import (
    COM_CHANGE_USER,
    COM_FIELD_LIST,
    COM_PING,
    COM_QUERY,
    COM_QUIT,
    ErrPacket,
    RawClient,
    native_scramble,
    parse_err,
)

TIMEOUT = 5
MAX_QUERY = 1024 * 1024  # the server's default max_query_size


@dataclass
class Witnesses:
    """The server's other clients: they must not notice what a bad client did."""

    server: ServerProcess
    dev: int
    bystander: pymysql.Connection

    @property
    def user(self) -> str:
        return str(self.dev)

    def check(self) -> None:
        expected = (("1", "keepme"),)
        with self.bystander.cursor() as cur:
            cur.execute("SELECT * FROM users_auth WHERE id = 1")
            assert cur.fetchall() == expected
        fresh = self.server.connect(self.dev)
        try:
            with fresh.cursor() as cur:
                cur.execute("SELECT * FROM users_auth WHERE id = 1")
                assert cur.fetchall() == expected
        finally:
            fresh.close()


@pytest.fixture
def witnesses(server: ServerProcess, dev: int) -> Iterator[Witnesses]:
    bystander = server.connect(dev)
    with bystander.cursor() as cur:
        cur.execute("INSERT INTO users_auth (id, hash) VALUES (1, 'keepme')")
    try:
        yield Witnesses(server, dev, bystander)
    finally:
        bystander.close()


# ------------------------------------------------------------------ helpers


def connect(server: ServerProcess) -> RawClient:
    return RawClient(server.host, server.port, timeout=TIMEOUT)


def logged_in(server: ServerProcess, user: str) -> RawClient:
    c = connect(server)
    answer = c.login(user, server.password)
    assert answer[0] == 0x00, parse_err(answer)
    return c


def refused(c: RawClient) -> ErrPacket | None:
    """ERR or clean close within the timeout (a timeout raises and fails the test)."""
    try:
        return c.err_or_close()
    finally:
        c.close()


def closed_after_eof(c: RawClient) -> None:
    """We stop sending mid-packet: the server must notice the end of stream and close."""
    c.sock.shutdown(socket.SHUT_WR)
    refused(c)


def rng(name: str) -> random.Random:
    return random.Random(name)  # deterministic per case, so a failure reproduces


# -------------------------------------------------------------------- cases
# Each case gets the server and a login name (its dev_id), sends its bad input and
# asserts the answer; test_bad_input_is_refused_and_harmless then asks the witnesses.


def garbage_instead_of_handshake_response(server: ServerProcess, user: str) -> None:
    c = connect(server)
    c.greeting()
    c.send_packet(rng("garbage").randbytes(300), 1)
    refused(c)


def http_request_instead_of_handshake_response(server: ServerProcess, user: str) -> None:
    c = connect(server)
    c.greeting()
    c.send_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    err = refused(c)
    assert err is not None and err.code == 1043  # Bad handshake


def handshake_response_of_two_bytes(server: ServerProcess, user: str) -> None:
    c = connect(server)
    c.greeting()
    c.send_packet(b"\x00\x02", 1)
    assert refused(c) is not None


def handshake_response_with_wrong_sequence_id(server: ServerProcess, user: str) -> None:
    c = connect(server)
    g = c.greeting()
    c.send_packet(c.handshake_response(user, native_scramble(server.password, g.scramble)), 0)
    assert refused(c) is not None


def truncated_header_during_handshake(server: ServerProcess, user: str) -> None:
    c = connect(server)
    c.greeting()
    c.send_raw(b"\x40\x00")
    closed_after_eof(c)


def truncated_handshake_response(server: ServerProcess, user: str) -> None:
    c = connect(server)
    g = c.greeting()
    payload = c.handshake_response(user, native_scramble(server.password, g.scramble))
    c.send_raw(struct.pack("<I", len(payload) | 1 << 24) + payload[:10])
    closed_after_eof(c)


def truncated_query_packet(server: ServerProcess, user: str) -> None:
    c = logged_in(server, user)
    c.send_raw(struct.pack("<I", 100) + b"\x03SELECT * FROM users_auth")
    closed_after_eof(c)


def length_header_of_16_mib_is_over_the_limit(server: ServerProcess, user: str) -> None:
    """0xFFFFFF is over the one-packet limit: the server closes without waiting for the bytes."""
    c = logged_in(server, user)
    c.send_raw(b"\xff\xff\xff\x00\x03SELECT 1")
    assert refused(c) is None


def length_header_of_16_mib_then_close(server: ServerProcess, user: str) -> None:
    """The largest allowed length, a few bytes, then the client hangs up."""
    c = logged_in(server, user)
    c.send_raw(b"\xfe\xff\xff\x00\x03SELECT 1")
    closed_after_eof(c)


def query_with_wrong_sequence_id(server: ServerProcess, user: str) -> None:
    c = logged_in(server, user)
    c.send_packet(b"\x03SELECT 1", 5)
    refused(c)


def empty_packet(server: ServerProcess, user: str) -> None:
    c = logged_in(server, user)
    c.send_packet(b"", 0)
    _, answer = c.read_packet()
    assert parse_err(answer) is not None
    assert c.ping()
    c.close()


def random_binary_queries(server: ServerProcess, user: str) -> None:
    r = rng("binary")
    c = logged_in(server, user)
    for _ in range(30):
        answer = c.query(b"\xff" + r.randbytes(r.randrange(1, 2000)))  # 0xff first: never valid UTF-8
        assert parse_err(answer) is not None
    assert c.ping()
    c.close()


def invalid_utf8_in_a_string_literal(server: ServerProcess, user: str) -> None:
    c = logged_in(server, user)
    for sql in (
        b"INSERT INTO pipes_messages (name, event, message) VALUES ('chan', 'ev', '\xff\xfe')",
        b"SELECT * FROM users_auth WHERE id = '\xff\xfe'",
        b"INSERT INTO users_auth (id, hash) VALUES (1, '\xc3')",
    ):
        err = parse_err(c.query(sql))
        assert err is not None and err.code == 3 and "not valid UTF-8" in err.message, (sql, err)
    assert c.ping()
    c.close()


def unknown_command_bytes(server: ServerProcess, user: str) -> None:
    c = logged_in(server, user)
    for command in (0x00, 0x1D, 0x20, 0x7F, 0xFE, 0xFF):
        c.command(command, b"whatever")
        _, answer = c.read_packet()
        assert parse_err(answer) is not None, hex(command)
    assert c.ping()
    c.close()


def strings_without_their_nul(server: ServerProcess, user: str) -> None:
    """COM_CHANGE_USER and COM_FIELD_LIST carry NUL-terminated names; these lack the NUL."""
    for command, body in ((COM_FIELD_LIST, b"users_auth"), (COM_CHANGE_USER, b"root"), (COM_CHANGE_USER, b"")):
        c = logged_in(server, user)
        c.command(command, body)
        assert refused(c) is not None, hex(command)


def com_quit(server: ServerProcess, user: str) -> None:
    c = logged_in(server, user)
    c.command(COM_QUIT)
    assert refused(c) is None


def connect_and_say_nothing(server: ServerProcess, user: str) -> None:
    connect(server).close()
    c = connect(server)
    c.greeting()
    c.close()


def many_connections_dropped_quickly(server: ServerProcess, user: str) -> None:
    clients = [connect(server) for _ in range(200)]
    for i, c in enumerate(clients):
        if i % 2:  # half of them with a reset instead of a FIN
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if i % 3 == 0:
            c.greeting()
        c.close()


CASES: dict[str, Callable[[ServerProcess, str], None]] = {
    f.__name__: f
    for f in (
        garbage_instead_of_handshake_response,
        http_request_instead_of_handshake_response,
        handshake_response_of_two_bytes,
        handshake_response_with_wrong_sequence_id,
        truncated_header_during_handshake,
        truncated_handshake_response,
        truncated_query_packet,
        length_header_of_16_mib_is_over_the_limit,
        length_header_of_16_mib_then_close,
        query_with_wrong_sequence_id,
        empty_packet,
        random_binary_queries,
        invalid_utf8_in_a_string_literal,
        unknown_command_bytes,
        strings_without_their_nul,
        com_quit,
        connect_and_say_nothing,
        many_connections_dropped_quickly,
    )
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused_and_harmless(witnesses: Witnesses, case: Callable[[ServerProcess, str], None]) -> None:
    case(witnesses.server, witnesses.user)
    witnesses.check()


# ------------------------------------------------------- statement size limit


def test_statement_of_2_mib_is_data_too_long(witnesses: Witnesses) -> None:
    with witnesses.bystander.cursor() as cur:
        with pytest.raises(pymysql.MySQLError) as exc:
            big = "x" * 2 * MAX_QUERY
            cur.execute(f"INSERT INTO pipes_messages (name, event, message) VALUES ('c', 'e', '{big}')")
        assert exc.value.args == (11, "Data is too long")
    witnesses.check()


def test_limit_is_max_query_size_characters(witnesses: Witnesses) -> None:
    """A statement of exactly max_query_size is too long; one character less is not."""
    c = logged_in(witnesses.server, witnesses.user)
    try:
        select = "SELECT '{}'"
        at_limit = select.format("a" * (MAX_QUERY - len(select) + 2))
        assert len(at_limit) == MAX_QUERY
        assert parse_err(c.query(at_limit)) == ErrPacket(11, "Data is too long")
        below = at_limit[:-3] + "'"
        reply = c.query(below)
        assert parse_err(reply) is None or parse_err(reply).code != 11  # type: ignore[union-attr]
        c.drain_response(reply)
        assert c.ping()
    finally:
        c.close()
    witnesses.check()


def test_insert_of_almost_1_mib_answers_without_hanging(witnesses: Witnesses) -> None:
    prefix = "INSERT INTO pipes_messages (name, event, message) VALUES ('big', 'e', '"
    sql = prefix + "m" * (MAX_QUERY - len(prefix) - 100) + "')"
    with witnesses.bystander.cursor() as cur:
        try:
            cur.execute(sql)  # read_timeout=10 turns a hang into a failure
        except pymysql.MySQLError as exc:
            assert exc.args[0] not in (2013, 2006), exc  # an answer, not a lost connection
    witnesses.check()


def test_ping_and_query_commands_still_answer_on_a_raw_connection(witnesses: Witnesses) -> None:
    """The raw client itself is sane: the cases above fail for the server's reasons, not its own."""
    c = logged_in(witnesses.server, witnesses.user)
    try:
        c.command(COM_PING)
        assert c.read_packet()[1][0] == 0x00
        c.command(COM_QUERY, b"SELECT * FROM users_auth WHERE id = 1")
        _, first = c.read_packet()
        assert first == b"\x02"  # two columns
        c.drain_response(first)
        assert c.ping()
    finally:
        c.close()


@pytest.mark.parametrize("sql", [
    "INSERT INTO users_auth (id, hash) VALUES (99999999999999999999999, 'x')",
    "INSERT INTO users_data (id, data) VALUES (18446744073709551616, 'x')",
    "INSERT INTO users_messages (id, event, message) VALUES (9223372036854775808, 'e', 'm')",
])
def test_ids_beyond_64_bits_are_refused_and_the_server_stays_up(witnesses: Witnesses, sql: str) -> None:
    """Such an id once reached the store, which could not take it and took the server down."""
    with witnesses.bystander.cursor() as cur:
        with pytest.raises(pymysql.MySQLError) as exc:
            cur.execute(sql)
    assert exc.value.args == (11, "The id field is too large")
    witnesses.check()
