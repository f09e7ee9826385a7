"""Where real drivers read bytes mysql-mimic built its own way, CometQL sends MySQL's (see mysql/_conformance.py).

A raw client that asks for CLIENT_DEPRECATE_EOF, as MariaDB Connector/J,
libmysqlclient and mysql2 do, checks the two packets that broke them: the OK
packet that ends a result set must count 0 rows and id 0 (Connector/J could not
log in), and the answer to COM_STMT_PREPARE must not end with an EOF packet
(mysql-connector-python's C extension took it as the answer to its next command
and lost the connection). Clients without the flag still get their EOF packets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from ..servers import ServerProcess
from ._raw import COM_PING, COM_STMT_PREPARE, DEPRECATE_EOF, RawClient, ok_counts, parse_err

AUTOCOMMIT = 0x0002


def logged_in(server: ServerProcess, dev: int, extra_flags: int) -> RawClient:
    client = RawClient(server.host, server.port)
    answer = client.login(str(dev), server.password, extra_flags=extra_flags)
    assert answer[:1] == b"\x00", parse_err(answer)
    return client


@pytest.fixture
def modern(server: ServerProcess, dev: int) -> Iterator[RawClient]:
    """A client that agreed on CLIENT_DEPRECATE_EOF."""
    with logged_in(server, dev, DEPRECATE_EOF) as client:
        yield client


@pytest.fixture
def classic(server: ServerProcess, dev: int) -> Iterator[RawClient]:
    """A client without CLIENT_DEPRECATE_EOF (mysqlnd, PHP's driver, is one)."""
    with logged_in(server, dev, 0) as client:
        yield client


def prepare(client: RawClient, sql: str) -> tuple[int, int]:
    """Send COM_STMT_PREPARE; return (columns, params) of its COM_STMT_PREPARE_OK."""
    client.command(COM_STMT_PREPARE, sql.encode())
    _, ok = client.read_packet()
    assert ok[:1] == b"\x00", parse_err(ok)
    _stmt_id, columns, params = struct.unpack_from("<IHH", ok, 1)
    return columns, params


def read_definitions(client: RawClient, count: int) -> None:
    for _ in range(count):
        _, definition = client.read_packet()
        assert definition[:4] == b"\x03def", definition  # a column definition starts with catalog "def"


def assert_next_is_ping_ok(client: RawClient) -> None:
    """Nothing of the previous answer is left unread: the next packet is the OK of a COM_PING."""
    client.command(COM_PING)
    _, answer = client.read_packet()
    assert answer[:1] == b"\x00", f"left over before the ping's OK: {answer!r}"


def test_a_result_set_ends_with_an_ok_packet_that_counts_nothing(modern: RawClient) -> None:
    modern.query("INSERT INTO users_messages (id, event, message) VALUES (42, 'note', 'hi')")
    first = modern.query("SHOW TABLES")
    assert first == b"\x01"  # one column
    read_definitions(modern, 1)
    rows = []
    while (packet := modern.read_packet()[1])[:1] != b"\xfe":
        rows.append(packet)
    assert len(rows) == 8  # CppComet's seven tables and stats_history
    assert ok_counts(packet) == (0, 0)  # MySQL's values; they were (8, 0)
    assert struct.unpack_from("<H", packet, 3)[0] & AUTOCOMMIT
    assert_next_is_ping_ok(modern)


def test_a_prepare_answer_has_no_eof_when_the_client_deprecated_it(modern: RawClient) -> None:
    assert prepare(modern, "SELECT * FROM users_messages WHERE id = ? AND event = ?")[1] == 2
    read_definitions(modern, 2)
    assert_next_is_ping_ok(modern)


def test_a_prepare_answer_ends_with_eof_for_older_clients(classic: RawClient) -> None:
    assert prepare(classic, "SELECT * FROM users_messages WHERE id = ?")[1] == 1
    read_definitions(classic, 1)
    _, eof = classic.read_packet()
    assert eof[:1] == b"\xfe" and len(eof) == 5
    assert_next_is_ping_ok(classic)


def test_a_prepare_without_parameters_is_one_packet(modern: RawClient) -> None:
    assert prepare(modern, "SHOW TABLES")[1] == 0
    assert_next_is_ping_ok(modern)
