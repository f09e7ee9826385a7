"""Property-based fuzzing of the MySQL port: whatever arrives, an answer comes and the server stays up.

Three properties, each bounded (a few hundred examples, socket timeouts, the
file runs well under a minute) against the shared session server:

* SQL-ish text assembled from CometQL's own vocabulary (keywords, tables,
  columns, literals, punctuation) over one persistent PyMySQL connection: every
  statement gets a result or a MySQL error — never a lost connection or a hang;
* random bytes as COM_QUERY payloads over one persistent raw connection: every
  one gets OK, ERR or a result set, and the connection still answers a ping;
* random bytes as whole packets (raw, or framed with a random command byte) on a
  fresh logged-in connection that then hangs up: the server closes it in time.

After every example a ping (on a connection opened before the fuzzing) proves the
server is still serving. The fuzzing logs in as its own dev_id, far from the ids
other tests use, and the only ``db_N`` in the vocabulary is that same dev.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pymysql
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cometql.sql import TABLES as COMETQL_TABLES

from ..servers import ServerProcess
from ._raw import Closed, RawClient, parse_err

FUZZ_DEV = 99_990
TIMEOUT = 5
LOST = (2006, 2013, 2014)  # server gone, lost connection, commands out of sync

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TABLES = ["pipes_messages", "users_messages", "users_auth", "users_data", "revoked_tokens", "pipes_settings",
          "pipes", "users_in_pipes", "users_time", "nosuch", "information_schema.tables"]
COLUMNS = ["id", "name", "event", "message", "hash", "data", "token", "length", "users", "user_id", "time",
           "index", "*", "COUNT(*)", "`index`"]
KEYWORDS = ["SELECT", "INSERT", "INTO", "VALUES", "DELETE", "FROM", "WHERE", "IN", "AND", "OR", "NOT", "LIMIT",
            "ORDER BY", "GROUP BY", "ASC", "DESC", "SHOW", "TABLES", "DATABASES", "STATUS", "GLOBAL", "COLUMNS",
            "DESCRIBE", "SET", "NAMES", "utf8mb4", "USE", "CometQL_v1", f"db_{FUZZ_DEV}", "UPDATE", "REPLACE",
            "NOW()", "DATABASE()", "@@version_comment", "LIKE", "IS", "NULL", "AS", "DISTINCT", "BETWEEN",
            "HAVING", "UNION", "JOIN", "ON", "/*", "*/", "--", "#"]
PUNCTUATION = ["(", ")", ",", ";", "=", "<", ">", "<=", ">=", "!=", "<>", "+", "-", "*", "/", ".", "'", '"', "`", "\\"]

string_literals = st.lists(
    st.sampled_from(list("abc_-09 ") + ["'", "''", "\\'", "\\", '"', "\\n", "\\0", "é", "\U0001f600", "%"]),
    max_size=12,
).map(lambda parts: "'" + "".join(parts) + "'")
int_literals = st.one_of(
    st.integers(-5, 20),
    st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, -(10**30)]),
).map(str)
float_literals = st.sampled_from(["1.5", "-0.0", "1e3", "1e999", "-1e999", ".5", "0x1F", "b'101'"])
tokens = st.one_of(
    st.sampled_from(KEYWORDS),
    st.sampled_from(TABLES),
    st.sampled_from(COLUMNS),
    st.sampled_from(PUNCTUATION),
    string_literals,
    int_literals,
    float_literals,
)
sql_soup = st.lists(tokens, min_size=1, max_size=25).map(" ".join)


@st.composite
def statements(draw: st.DrawFn) -> str:
    """Plausible statements with fuzzed parts: they reach the executor, not only the parser."""
    table = draw(st.sampled_from(TABLES))
    own = list(COMETQL_TABLES[table].columns) if table in COMETQL_TABLES else COLUMNS[:-4]
    cols = draw(st.one_of(
        st.permutations(own).flatmap(lambda cs: st.integers(1, len(cs)).map(lambda n: list(cs[:n]))),
        st.lists(st.sampled_from(COLUMNS[:-4]), min_size=1, max_size=4),
    ))
    value = st.one_of(string_literals, int_literals, float_literals, st.just("NULL"))
    rows = draw(st.lists(st.lists(value, min_size=len(cols), max_size=len(cols) + 1), min_size=1, max_size=3))
    where = draw(st.one_of(
        st.just(""),
        st.builds(lambda c, v: f" WHERE {c} = {v}", st.sampled_from(cols), value),
        st.builds(lambda c, vs: f" WHERE {c} IN ({', '.join(vs)})", st.sampled_from(cols), st.lists(value, max_size=4)),
    ))
    tail = draw(st.sampled_from(["", " LIMIT 1", " LIMIT 1, 2", " ORDER BY 1 DESC", " LIMIT -1", ";", "; SELECT 1"]))
    kind = draw(st.sampled_from(["insert", "select", "delete", "describe"]))
    if kind == "insert":
        values = ", ".join("(" + ", ".join(r) + ")" for r in rows)
        return f"INSERT INTO {table} ({', '.join(cols)}) VALUES {values}{tail}"
    if kind == "select":
        return f"SELECT {', '.join(cols)} FROM {table}{where}{tail}"
    if kind == "delete":
        return f"DELETE FROM {table}{where}{tail}"
    return f"DESCRIBE {table}"


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def sentinel(server: ServerProcess) -> Iterator[pymysql.Connection]:
    """Opened before any fuzzing; pinged after every example."""
    conn = server.connect(FUZZ_DEV)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def fuzz_db(server: ServerProcess) -> Iterator[pymysql.Connection]:
    conn = server.connect(FUZZ_DEV)  # read_timeout=10: a hang fails instead of blocking
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def fuzz_raw(server: ServerProcess) -> Iterator[RawClient]:
    c = logged_in(server)
    yield c
    c.close()


def logged_in(server: ServerProcess) -> RawClient:
    c = RawClient(server.host, server.port, timeout=TIMEOUT)
    answer = c.login(str(FUZZ_DEV), server.password)
    assert answer[0] == 0x00, parse_err(answer)
    return c


def still_serving(sentinel: pymysql.Connection) -> None:
    sentinel.ping(reconnect=False)


def run_sql(conn: pymysql.Connection, sql: str) -> None:
    """A result or a MySQL error; a lost connection or a timeout fails the property."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
        event("answered: result or OK")
    except pymysql.MySQLError as exc:
        assert exc.args and exc.args[0] not in LOST, f"{sql!r} -> {exc!r}"
        assert not isinstance(exc, pymysql.InterfaceError), f"{sql!r} -> {exc!r}"
        event(f"answered: error {exc.args[0]}")


# ----------------------------------------------------------------- properties


@FUZZ
@given(sql=st.one_of(sql_soup, statements()))
def test_sql_text_always_gets_an_answer(fuzz_db: pymysql.Connection, sentinel: pymysql.Connection, sql: str) -> None:
    run_sql(fuzz_db, sql)
    fuzz_db.ping(reconnect=False)
    still_serving(sentinel)


@FUZZ
@given(payload=st.binary(max_size=300))
def test_random_query_payloads_get_an_answer(fuzz_raw: RawClient, sentinel: pymysql.Connection, payload: bytes) -> None:
    first = fuzz_raw.query(payload)
    fuzz_raw.drain_response(first)
    assert fuzz_raw.ping()
    still_serving(sentinel)


def framed(payload: bytes, seq: int) -> bytes:
    return struct.pack("<I", len(payload) | seq << 24) + payload


whole_packets = st.one_of(
    st.binary(min_size=1, max_size=300),
    st.builds(framed, st.binary(min_size=1, max_size=300), st.integers(0, 255)),
    st.builds(framed, st.builds(lambda c, b: bytes([c]) + b, st.integers(0, 255), st.binary(max_size=100)), st.just(0)),
)


@FUZZ
@given(data=whole_packets)
def test_random_packets_end_in_a_clean_close(server: ServerProcess, sentinel: pymysql.Connection, data: bytes) -> None:
    c = logged_in(server)
    try:
        c.send_raw(data)
        c.sock.shutdown(socket.SHUT_WR)
        while True:  # whatever it answers, the server must then close (a timeout fails)
            try:
                c.read_packet()
            except Closed:
                break
    finally:
        c.close()
    still_serving(sentinel)
