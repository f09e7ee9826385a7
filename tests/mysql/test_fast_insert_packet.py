"""The one-row INSERT answered at the packet (mysql/_fastquery.py) sends the bytes mysql-mimic's path sends.

Two servers with the same settings, one with the packet fast path off, get the
same statements from the same dev on raw connections (with and without
CLIENT_DEPRECATE_EOF and CLIENT_QUERY_ATTRIBUTES): every answer (OK with its
affected rows, insert id and status flags, or ERR with its CometQL code and
text) must be byte for byte the same, and so must the counters the statements
move (messages published, statements, errors by code).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from cometql.sql import fast_insert

from ..servers import ServerProcess
from ._raw import COM_QUERY, DEPRECATE_EOF, MORE_RESULTS, RawClient, ok_status, parse_err

QUERY_ATTRIBUTES = 1 << 27
QUEUE_MAX = 2
LONG = "x" * 300
COUNTERS = ("backend_messages", "messages_published", "messages_queued", "queue_depth")

#: (statement, accepted by fast_insert): the accepted ones are the fast path's, the others check the fall-back.
STATEMENTS = [
    ("INSERT INTO pipes_messages (name, event, message) VALUES ('chat', 'new', 'hi')", True),
    ("insert into `pipes_messages` (`name`,`event`,`message`) values (\"chat\",'e','it''s');", True),
    ("INSERT INTO pipes_messages (name, event, message) VALUES ('bad channel!', 'new', 'hi')", True),
    ("INSERT INTO pipes_messages (name, event, message) VALUES ('', 'new', 'hi')", True),
    (f"INSERT INTO pipes_messages (name, event, message) VALUES ('chat', 'new', '{LONG}')", True),
    ("INSERT INTO pipes_messages (name, nope, message) VALUES ('chat', 'new', 'hi')", True),
    ("INSERT INTO pipes_messages (name, event, message) VALUES ('chat', 'new')", True),
    ("INSERT INTO users_messages (id, event, message) VALUES (7, 'e', 'one')", True),
    ("INSERT INTO users_messages (id, `index`, event, message) VALUES (7, 'k', 'e', 'bad key')", True),
    ("INSERT INTO users_messages (id, `index`, event, message) VALUES (7, 'key-1', 'e', 'two')", True),
    ("INSERT INTO users_messages (id, event, message) VALUES (7, 'e', 'queue full')", True),
    ("INSERT INTO users_messages (id, event, message) VALUES (-3, 'e', 'm')", True),
    ("INSERT INTO pipes_messages (name, event, message) VALUES ('abc','e','1'), ('def','e','2')", True),
    ("INSERT INTO users_messages (id, event, message) VALUES (7,'e','3'), (8,'e','4'), (7,'e','5')", True),
    ("INSERT INTO pipes_messages (name, event, message) VALUES ('abc','e','1'), ('def','e')", False),
    ("INSERT INTO pipes_messages (name, event, message) VALUES ('chat','e','x'); SELECT 1", False),
    ("SELECT 1", False),
]


def _server(tmp_path: Path, name: str, fast: bool) -> ServerProcess:
    env = {"COMETQL_ADMIN_LOGIN_ATTEMPTS": "0", "COMETQL_QUEUE_MAX_MESSAGES": str(QUEUE_MAX),
           "COMETQL_MAX_MESSAGE_SIZE": "200"}
    if not fast:
        env["CQL_PACKET_FAST_INSERT"] = "off"
    return ServerProcess(tmp_path / name, env=env).start()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    fast, slow = _server(tmp_path, "fast", True), _server(tmp_path, "slow", False)
    try:
        yield fast, slow
    finally:
        fast.stop()
        slow.stop()


def _response(client: RawClient, deprecate_eof: bool) -> list[tuple[int, bytes]]:
    """Every packet (sequence id, payload) of one command's answer, multi-statement answers included."""
    packets: list[tuple[int, bytes]] = []
    while True:
        packets.append(client.read_packet())
        first = packets[-1][1]
        if first[:1] == b"\xff":
            return packets
        if first[:1] == b"\x00":
            status = ok_status(first)
        else:  # a result set: column definitions, EOF (unless deprecated), rows, EOF or OK (0xFE)
            ends = 1 if deprecate_eof else 2
            while ends:
                packets.append(client.read_packet())
                ends -= packets[-1][1][:1] == b"\xfe"
            status = struct.unpack_from("<H", packets[-1][1], len(packets[-1][1]) - 4)[0]
        if not status & MORE_RESULTS:
            return packets


def _answers(server: ServerProcess, flags: int) -> tuple[list[list[tuple[int, bytes]]], dict[str, str]]:
    """Each statement's answer packets; then the counters of SHOW GLOBAL STATUS."""
    out = []
    with RawClient(server.host, server.port) as client:
        login = client.login("5", server.password, extra_flags=flags)
        assert login[:1] == b"\x00", parse_err(login)
        prefix = b"\x00\x01" if flags & QUERY_ATTRIBUTES else b""
        for sql, _ in STATEMENTS:
            client.command(COM_QUERY, prefix + sql.encode())
            out.append(_response(client, bool(flags & DEPRECATE_EOF)))
    with RawClient(server.host, server.port) as client:
        assert client.login("5", server.password)[:1] == b"\x00"
        status = dict(client.query_rows("SHOW GLOBAL STATUS"))
    return out, {k: str(status[k]) for k in COUNTERS}


def test_the_table_really_exercises_the_fast_path() -> None:
    for sql, accepted in STATEMENTS:
        assert (fast_insert(sql) is not None) is accepted, sql


@pytest.mark.parametrize("flags", [0, DEPRECATE_EOF, QUERY_ATTRIBUTES], ids=["classic", "deprecate_eof", "attrs"])
def test_answers_are_byte_identical_with_the_fast_path_on_and_off(
        servers: tuple[ServerProcess, ServerProcess], flags: int) -> None:
    fast, slow = servers
    (on, counted_on), (off, counted_off) = _answers(fast, flags), _answers(slow, flags)
    for (sql, _), a, b in zip(STATEMENTS, on, off, strict=True):
        assert a == b, (sql, a, b)
    assert counted_on == counted_off
    errors = [parse_err(packets[0][1]) for packets in on]
    codes = {err.code for err in errors if err is not None}
    assert 429 in codes, codes  # the queue-full row did meet a full queue
    assert int(counted_on["messages_published"]) > 0
