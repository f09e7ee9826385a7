"""Which dev a connection acts for: COM_CHANGE_USER, USE / COM_INIT_DB, and ``pin_dev``.

A connection acts for its login name's dev, or for N after ``USE db_N``;
``USE CometQL_v1`` goes back to the login's own dev. COM_CHANGE_USER is a new
login on the same socket (its dev, a fresh session); a refused change closes
the connection, as MySQL does. With ``pin_dev`` a login cannot act for another
dev. Where a statement acts is checked through a second, ordinary login.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from ..servers import ServerProcess
from ..web._wire import mysql_rows
from ._raw import Closed, RawClient, parse_err


def raw_login(server: ServerProcess, user: str, database: str | None = "CometQL_v1") -> RawClient:
    c = RawClient(server.host, server.port, timeout=5)
    ok = c.login(user, server.password, database)
    assert ok[:1] == b"\x00", parse_err(ok)
    return c


def hash_of(server: ServerProcess, dev: int, user_id: int) -> list[str]:
    """``users_auth``'s hash for ``user_id`` as dev ``dev`` sees it (a fresh login)."""
    return [row[0] for row in mysql_rows(server, dev, f"SELECT hash FROM users_auth WHERE id = {user_id}")]


def status(rows: list[tuple[str | None, ...]]) -> dict[str | None, str | None]:
    return {r[0]: r[1] for r in rows}


def test_change_user_acts_for_the_new_login_dev(server: ServerProcess, dev: int) -> None:
    with raw_login(server, "root") as c:
        ok = c.change_user(str(dev), server.password)
        assert ok[:1] == b"\x00", parse_err(ok)
        assert c.query_rows("SELECT DATABASE()") == [("CometQL_v1",)]
        st = status(c.query_rows("SHOW STATUS"))
        assert st["id"] == str(dev)
        assert st["server_online"] == "1"  # this connection, counted for its new dev
        ok = c.query("INSERT INTO users_auth (id, hash) VALUES (41, 'changedUserHash')")
        assert ok[:1] == b"\x00", parse_err(ok)
    assert hash_of(server, dev, 41) == ["changedUserHash"]
    assert hash_of(server, 0, 41) != ["changedUserHash"]  # not the first login's dev 0


def test_change_user_to_a_database_of_another_dev(server: ServerProcess, dev: int) -> None:
    with raw_login(server, "root") as c:
        ok = c.change_user(str(dev), server.password, f"db_{dev + 1}")
        assert ok[:1] == b"\x00", parse_err(ok)
        assert c.query_rows("SELECT DATABASE()") == [(f"db_{dev + 1}",)]
        assert status(c.query_rows("SHOW STATUS"))["id"] == str(dev + 1)
        c.query_rows("USE CometQL_v1")
        assert status(c.query_rows("SHOW STATUS"))["id"] == str(dev)  # the changed-to login's own dev


def test_change_user_resets_session_variables(server: ServerProcess, dev: int) -> None:
    with raw_login(server, str(dev)) as c:
        c.query_rows("SET @@session.sql_mode = 'ANSI_QUOTES'")
        assert c.query_rows("SELECT @@session.sql_mode") == [("ANSI_QUOTES",)]
        assert c.change_user(str(dev), server.password)[:1] == b"\x00"
        assert c.query_rows("SELECT @@session.sql_mode") != [("ANSI_QUOTES",)]


@pytest.mark.parametrize(("user", "password", "database", "code"), [
    ("{dev}", "wrong password", "CometQL_v1", 1045),
    ("not-a-dev", None, "CometQL_v1", 1045),
    ("{dev}", None, "no_such_db", 15),
])
def test_a_refused_change_user_closes_the_connection(server: ServerProcess, dev: int, user: str,
                                                     password: str | None, database: str, code: int) -> None:
    with raw_login(server, str(dev)) as c:
        assert status(c.query_rows("SHOW STATUS"))["server_online"] == "1"
        err = parse_err(c.change_user(user.format(dev=dev), password or server.password, database))
        assert err is not None and err.code == code, err
        with pytest.raises(Closed):  # MySQL closes it too; before, it stayed logged in as the old user
            c.query("INSERT INTO users_auth (id, hash) VALUES (42, 'afterRefusedChange')")
            c.read_packet()
    assert hash_of(server, dev, 42) == []
    conn = server.connect(dev)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW STATUS")
            assert dict(cur.fetchall())["server_online"] == "1"  # only this one: the closed one was uncounted
    finally:
        conn.close()


def test_use_cometql_v1_goes_back_to_the_login_dev(server: ServerProcess, dev: int) -> None:
    other = dev + 500
    conn = server.connect(dev)
    try:
        with conn.cursor() as cur:
            cur.execute(f"USE db_{other}")
            cur.execute("INSERT INTO users_auth (id, hash) VALUES (43, 'inOtherDev')")
            cur.execute("USE CometQL_v1")
            cur.execute("SELECT DATABASE()")
            assert cur.fetchall() == (("CometQL_v1",),)
            cur.execute("SHOW STATUS")
            assert dict(cur.fetchall())["id"] == str(dev)
            cur.execute("INSERT INTO users_auth (id, hash) VALUES (43, 'inOwnDev')")
            conn.select_db(f"db_{other}")  # COM_INIT_DB takes the same path
            cur.execute("SELECT hash FROM users_auth WHERE id = 43")
            assert cur.fetchall() == (("inOtherDev",),)
            conn.select_db("CometQL_v1")
            cur.execute("SELECT hash FROM users_auth WHERE id = 43")
            assert cur.fetchall() == (("inOwnDev",),)
    finally:
        conn.close()
    assert hash_of(server, dev, 43) == ["inOwnDev"]
    assert hash_of(server, other, 43) == ["inOtherDev"]


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("pinned"), env={"COMETQL_PIN_DEV": "true"}).start()
    yield srv
    srv.stop()


def test_pin_dev_refuses_another_dev(pinned: ServerProcess, tmp_path: Path) -> None:
    conn = pinned.connect(7)
    try:
        with conn.cursor() as cur:
            with pytest.raises(pymysql.err.OperationalError) as refused:
                cur.execute("USE db_5")
            assert refused.value.args[0] == 1044
            with pytest.raises(pymysql.err.OperationalError) as refused:
                conn.select_db("db_5")
            assert refused.value.args[0] == 1044
            cur.execute("USE db_7")  # its own dev, by number
            cur.execute("USE CometQL_v1")
            cur.execute("SHOW STATUS")
            assert dict(cur.fetchall())["id"] == "7"
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pinned.connect(7, database="db_5")
    assert refused.value.args[0] == 1044
    with raw_login(pinned, "7") as c:
        assert c.change_user("8", pinned.password, "db_8")[:1] == b"\x00"  # a new login: its own dev
        assert status(c.query_rows("SHOW STATUS"))["id"] == "8"
        err = parse_err(c.change_user("8", pinned.password, "db_9"))
        assert err is not None and err.code == 1044
        with pytest.raises(Closed):
            c.query("SELECT 1")
