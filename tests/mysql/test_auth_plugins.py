"""Login over the wire: the greeting, the auth-plugin switch, login names and the database at login.

MySQL 8 clients open with ``caching_sha2_password``; CppComet could not serve
them. We must switch them to ``mysql_native_password`` with an AuthSwitchRequest.
The raw client shows the exact packets; PyMySQL checks the login-name rules the
way a real backend would meet them.
"""

from __future__ import annotations

import re
import time

import pymysql
import pytest

from ..servers import ServerProcess
from ._raw import COMPRESS, SSL, RawClient, native_scramble, parse_err, sha256_scramble

NATIVE = "mysql_native_password"


def raw(server: ServerProcess) -> RawClient:
    return RawClient(server.host, server.port, timeout=5)


def test_greeting_advertises_native_password_no_ssl_no_compress_and_a_mysql_version(server: ServerProcess) -> None:
    with raw(server) as c:
        g = c.greeting()
    assert g.plugin == NATIVE
    assert len(g.scramble) == 20
    assert not g.capabilities & SSL
    assert not g.capabilities & COMPRESS
    assert re.match(r"\d+\.\d+\.\d+", g.version), g.version
    assert g.version == "5.7.99-CometQL-0.1.0"


def test_caching_sha2_client_is_switched_to_native_password(server: ServerProcess) -> None:
    with raw(server) as c:
        g = c.greeting()
        first = sha256_scramble(server.password, g.scramble)
        assert len(first) == 32
        c.send_packet(c.handshake_response("root", first, "CometQL_v1", plugin="caching_sha2_password"), 1)
        seq, switch = c.read_packet()
        assert switch[0] == 0xFE
        name, _, nonce = switch[1:].partition(b"\0")
        assert name.decode() == NATIVE
        assert len(nonce) == 21 and nonce[20] == 0  # 20 bytes of scramble and a NUL
        nonce = nonce[:20]
        c.send_packet(native_scramble(server.password, nonce), seq + 1)
        _, ok = c.read_packet()
        assert ok[0] == 0x00, parse_err(ok)
        reply = c.query("SELECT 1")
        assert reply[0] == 1  # a result set with one column: logged in and serving
        c.drain_response(reply)
        assert c.ping()


def test_native_client_logs_in_without_a_switch(server: ServerProcess) -> None:
    with raw(server) as c:
        assert c.login("root", server.password)[0] == 0x00
        assert c.ping()


def test_wrong_answer_to_the_switch_is_access_denied(server: ServerProcess) -> None:
    with raw(server) as c:
        g = c.greeting()
        wrong = sha256_scramble("nope", g.scramble)
        c.send_packet(c.handshake_response("root", wrong, plugin="caching_sha2_password"), 1)
        seq, switch = c.read_packet()
        assert switch[0] == 0xFE
        c.send_packet(native_scramble("nope", switch[1:].partition(b"\0")[2][:20]), seq + 1)
        err = c.err_or_close()
        assert err is not None and err.code == 1045


def test_empty_password_is_refused_with_1045(server: ServerProcess) -> None:
    with raw(server) as c:
        err = parse_err(c.login("root", ""))
        assert err is not None and err.code == 1045
        assert c.err_or_close() is None  # then the server closes
    with pytest.raises(pymysql.MySQLError) as exc:
        pymysql.connect(host=server.host, port=server.port, user="root", password="", connect_timeout=5)
    assert exc.value.args[0] == 1045


@pytest.mark.parametrize(("login", "dev_id"), [("root", "0"), ("0", "0"), ("7", "7"), ("12345", "12345")])
def test_login_name_selects_the_dev_id(server: ServerProcess, login: str, dev_id: str) -> None:
    conn = server.connect(login)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW STATUS")
            status = dict(cur.fetchall())
        assert status["id"] == dev_id
    finally:
        conn.close()


@pytest.mark.parametrize("login", ["bob", "-1", "7a", "999999999999999999999"])
def test_login_name_that_is_not_a_dev_id_is_refused_with_1045(server: ServerProcess, login: str) -> None:
    with pytest.raises(pymysql.MySQLError) as exc:
        server.connect(login)
    assert exc.value.args[0] == 1045


def test_unknown_database_at_login_is_error_15_and_closes(server: ServerProcess) -> None:
    with raw(server) as c:
        err = parse_err(c.login("7", server.password, database="nosuch"))
        assert err is not None and (err.code, err.message) == (15, "Select database failure")
        assert c.err_or_close() is None
    with pytest.raises(pymysql.MySQLError) as exc:
        server.connect(7, database="nosuch")
    assert exc.value.args == (15, "Select database failure")


def show_status(conn: pymysql.Connection) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute("SHOW STATUS")
        return dict(cur.fetchall())


@pytest.mark.parametrize("database", [None, "CometQL_v1"])
def test_login_without_db_n_keeps_the_login_dev_id(server: ServerProcess, database: str | None) -> None:
    conn = server.connect(7, database=database)
    try:
        assert show_status(conn)["id"] == "7"
    finally:
        conn.close()


def test_db_n_at_login_switches_dev_id_and_counts_the_session_once(server: ServerProcess, dev: int) -> None:
    conn = server.connect(7, database=f"db_{dev}")
    try:
        status = show_status(conn)
        assert (status["id"], status["server_online"]) == (str(dev), "1")
    finally:
        conn.close()
    again = server.connect(dev)
    try:  # the first session is uncounted once the server has seen it leave
        deadline = time.monotonic() + 5
        while show_status(again)["server_online"] != "1" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert show_status(again)["server_online"] == "1"
    finally:
        again.close()
