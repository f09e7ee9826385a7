"""Everything besides table statements that drivers and tools send (cometql-wire.md §3, README decisions).

SHOW DATABASES/TABLES/[GLOBAL] STATUS, DESCRIBE/SHOW COLUMNS for every table,
``SELECT @@version_comment``, ``SELECT DATABASE()``, any SET, USE and
COM_INIT_DB (db_N switches dev_id), COM_PING, lexical leniency (``;``,
comments, keyword case), the too-short / too-long / syntax errors, and the
isolation of one dev's state from another's.
"""

from __future__ import annotations

import pymysql
import pytest
from pymysql.cursors import Cursor

from cometql._version import SERVER_VERSION

from ..servers import ServerProcess
from ._cases import NO_TABLE, SYNTAX, columns, connection_as, err, expect_error, expect_ok, other_dev, rows

LISTED = ["users_auth", "users_time", "users_messages", "pipes_messages", "users_in_pipes", "pipes", "pipes_settings",
          "stats_history"]  # CppComet's seven in its order, then the tables CometQL adds (the contract)


def test_show_databases(db: Cursor) -> None:
    assert columns(db, "SHOW DATABASES") == ["Database"]
    assert rows(db, "SHOW DATABASES") == [("CometQL_v1",)]


def test_show_tables(db: Cursor) -> None:
    assert columns(db, "SHOW TABLES") == ["Tables"]
    assert [r[0] for r in rows(db, "SHOW TABLES")] == LISTED


@pytest.mark.parametrize("sql", ["SHOW STATUS", "SHOW SESSION STATUS", "show status"])
def test_show_session_status(db: Cursor, dev: int, sql: str) -> None:
    assert columns(db, sql) == ["Variable_name", "Value"]
    got = rows(db, sql)
    assert [name for name, _ in got] == ["flag", "id", "user_online", "server_online", "messages"]
    assert got[:3] == [("flag", "session"), ("id", str(dev)), ("user_online", "0")]
    assert int(got[3][1]) >= 1  # this connection


GLOBAL_NAMES = [
    "flag", "uptime", "uptime_in_hours", "uptime_in_days", "frontend_name", "backend_name",
    "frontend_stat_interval", "backend_stat_interval", "frontend_online", "backend_online",
    "frontend_messages", "backend_messages", "frontend_add_client", "backend_add_client",
    "frontend_delete_client", "backend_delete_client", "frontend_messages_ps", "backend_messages_ps",
    "frontend_add_client_ps", "backend_add_client_ps", "frontend_delete_client_ps", "backend_delete_client_ps",
    "network_events",
]


@pytest.mark.parametrize("sql", ["SHOW GLOBAL STATUS", "show global status", "Show Global Status;"])
def test_show_global_status(db: Cursor, sql: str) -> None:
    got = dict(rows(db, sql))
    assert [name for name, _ in rows(db, sql)][: len(GLOBAL_NAMES)] == GLOBAL_NAMES
    assert got["flag"] == "global"
    assert int(got["uptime"]) >= 0
    assert float(got["uptime_in_hours"]) >= 0 and "." in got["uptime_in_days"]
    assert int(got["backend_online"]) >= 1


DECLARED = {
    "users_auth": (("id", "int(11)", "PRI"), ("hash", "varchar(32)", "")),
    "users_time": (("id", None, "PRI"), ("time", None, "")),
    "users_messages": (("id", None, "PRI"), ("index", None, ""), ("event", None, ""), ("message", None, "")),
    "pipes_messages": (("id", None, ""), ("time", None, ""), ("name", None, "PRI"), ("index", None, ""),
                       ("event", None, ""), ("message", None, ""), ("user_id", None, "")),
    "users_in_pipes": (("name", None, "PRI"), ("user_id", None, ""), ("user_uuid", None, ""), ("user_agent", None, ""),
                       ("ip", None, ""), ("origin", None, ""), ("language", None, "")),
    "pipes": (("name", None, "PRI"), ("users", None, "")),
    "pipes_settings": (("name", None, "PRI"), ("length", None, "")),
    "users_data": (("id", None, "PRI"), ("data", None, "")),
    "revoked_tokens": (("token", None, "PRI"),),
}


@pytest.mark.parametrize("form", ["DESCRIBE {}", "SHOW COLUMNS FROM {}", "SHOW FULL COLUMNS IN {}", "DESC {}"],
                         ids=["describe", "show-columns", "show-full-columns", "desc"])
@pytest.mark.parametrize("table", list(DECLARED))
def test_describe_every_table(db: Cursor, table: str, form: str) -> None:
    sql = form.format(table)
    assert columns(db, sql) == ["Field", "Type", "Null", "Key", "Default", "Extra"]
    got = rows(db, sql)
    assert [(f, k) for f, _, _, k, _, _ in got] == [(f, k) for f, _, k in DECLARED[table]]
    for (_, type_, null, _, default, extra), (_, want_type, _) in zip(got, DECLARED[table], strict=True):
        assert (null, default, extra) == ("NO", "", "")
        assert type_ == want_type if want_type else type_
    if table == "users_auth":
        assert got == [("id", "int(11)", "NO", "PRI", "", ""), ("hash", "varchar(32)", "NO", "", "", "")]


@pytest.mark.parametrize("sql", ["DESCRIBE nosuch", "DESCRIBE Users_Auth", "SHOW COLUMNS FROM nosuch"])
def test_describe_unknown_table(db: Cursor, sql: str) -> None:
    expect_error(db, sql, NO_TABLE)


@pytest.mark.parametrize("sql", ["SELECT @@version_comment LIMIT 1", "select @@version_comment limit 1"])
def test_version_comment(db: Cursor, sql: str) -> None:
    assert columns(db, sql) == ["@@version_comment"]
    [(comment,)] = rows(db, sql)
    assert "CometQL" in comment


def test_server_version(server: ServerProcess, dev: int) -> None:
    conn = server.connect(dev)
    try:
        assert conn.get_server_info() == SERVER_VERSION
        assert SERVER_VERSION.startswith("5.7.99-CometQL-")
    finally:
        conn.close()


def test_select_database(db: Cursor) -> None:
    assert rows(db, "SELECT DATABASE()") == [("CometQL_v1",)]
    assert [d[0] for d in db.description] == ["DATABASE()"]


def test_select_database_without_one_is_empty_text(server: ServerProcess, dev: int) -> None:
    conn = server.connect(dev, database=None)
    try:
        assert rows(conn.cursor(), "SELECT DATABASE()") == [("",)]  # CppComet sends '' (no NULLs)
    finally:
        conn.close()


@pytest.mark.parametrize("sql", [
    "SET NAMES utf8", "SET NAMES 'utf8mb4'", "SET autocommit=1", "SET @@session.sql_mode = ''",
    "SET SESSION wait_timeout = 100", "SET CHARACTER SET utf8", "set names utf8;",
])
def test_any_set_is_ok(db: Cursor, sql: str) -> None:
    assert expect_ok(db, sql) == (0, 0)


def test_use_cometql_v1(db: Cursor) -> None:
    assert expect_ok(db, "USE CometQL_v1") == (0, 0)
    assert rows(db, "SELECT DATABASE()") == [("CometQL_v1",)]


@pytest.mark.parametrize("name", ["nosuch", "cometql_v1", "db_", "db_x", "db_99999999"])
def test_use_unknown_database(db: Cursor, name: str) -> None:
    expect_error(db, f"USE {name}", (15, "Select database failure"))
    assert rows(db, "SHOW DATABASES") == [("CometQL_v1",)]  # still usable


def status_id(cur: Cursor) -> str:
    return dict(rows(cur, "SHOW STATUS"))["id"]


def test_use_db_n_switches_dev(server: ServerProcess, db: Cursor, dev: int) -> None:
    expect_ok(db, "INSERT INTO users_auth (id, hash) VALUES (1, 'from_a')")
    with connection_as(server, other_dev(dev)) as other:
        assert rows(other, "SELECT * FROM users_auth WHERE id = 1") == []
        assert expect_ok(other, f"USE db_{dev}") == (0, 0)
        assert status_id(other) == str(dev)
        assert rows(other, "SELECT * FROM users_auth WHERE id = 1") == [("1", "from_a")]


def test_com_init_db_switches_dev(server: ServerProcess, db: Cursor, dev: int) -> None:
    expect_ok(db, "INSERT INTO users_data (id, data) VALUES (2, 'data_a')")
    conn = server.connect(other_dev(dev), database=None)
    try:
        cur = conn.cursor()
        conn.select_db(f"db_{dev}")
        assert status_id(cur) == str(dev)
        assert rows(cur, "SELECT data FROM users_data WHERE id = 2") == [("data_a",)]
        conn.select_db("CometQL_v1")
        assert rows(cur, "SELECT DATABASE()") == [("CometQL_v1",)]
        with pytest.raises(pymysql.MySQLError) as caught:
            conn.select_db("nosuch")
        assert caught.value.args == (15, "Select database failure")
        assert rows(cur, "SHOW DATABASES") == [("CometQL_v1",)]
    finally:
        conn.close()


def test_login_with_db_n(server: ServerProcess, dev: int) -> None:
    with connection_as(server, other_dev(dev), database=f"db_{dev}") as cur:
        assert status_id(cur) == str(dev)


def test_login_root_is_dev_0(server: ServerProcess) -> None:
    with connection_as(server, "root") as cur:
        assert status_id(cur) == "0"


def test_com_ping(server: ServerProcess, dev: int) -> None:
    conn = server.connect(dev)
    try:
        conn.ping(reconnect=False)
        conn.ping(reconnect=False)
        assert rows(conn.cursor(), "SHOW DATABASES") == [("CometQL_v1",)]
    finally:
        conn.close()


# ------------------------------------------------------------------ lexical


@pytest.mark.parametrize("sql", [
    "SELECT * FROM users_time WHERE id = 12",
    "SELECT * FROM users_time WHERE id = 12;",
    "select * from users_time where id = 12 ;  ",
    "Select * From users_time Where id = 12",
    "sElEcT * fRoM users_time wHeRe id iN (12)",
    "/* c */ select * from users_time where id = 12",
    "select * from users_time where id = 12 -- trailing comment",
    "select * from users_time where id = 12 # hash comment",
    "select *\nfrom users_time\nwhere id = 12",
    "SELECT * FROM `users_time` WHERE `id` = '12'",
    "SELECT * FROM CometQL_v1.users_time WHERE id = 12",
], ids=["plain", "semicolon", "semicolon-spaces", "mixed-case", "odd-case", "block-comment", "dash-comment",
        "hash-comment", "newlines", "backticks", "qualified"])
def test_lexical_variants_give_the_same_answer(db: Cursor, sql: str) -> None:
    assert rows(db, sql) == [("12", "-1")]


def test_keyword_case_does_not_matter_for_inserts(db: Cursor) -> None:
    assert expect_ok(db, "insert into users_auth (id, hash) values (1, 'a');") == (1, 1)
    assert expect_ok(db, "InSeRt InTo users_auth (id, hash) VaLuEs (2, 'b')") == (1, 2)
    assert rows(db, "select * from users_auth where id in (1, 2)") == [("1", "a"), ("2", "b")]


ERRORS = [
    err("UPDATE users_auth SET hash='x' WHERE id=1", SYNTAX, "update"),
    err("REPLACE INTO users_auth (id, hash) VALUES (1, 'a')", SYNTAX, "replace"),
    err("garbage garbage", SYNTAX, "garbage"),
    err("abcd", SYNTAX, "four-chars"),
    err("SELECT x FROM", SYNTAX, "incomplete-select"),
    err("INSERT INTO users_auth (id, hash) VALUES (1, CONCAT('a', 'b'))", SYNTAX, "function-value"),
    err("SELECT * FROM users_auth a JOIN users_data b ON a.id = b.id WHERE a.id = 1", SYNTAX, "join"),
    err("ab", (17, "Data is too short"), "two-chars"),
    err("abc", (17, "Data is too short"), "three-chars"),
    err("x;", (17, "Data is too short"), "char-and-semicolon"),
    err("SELECT * FROM nosuch WHERE id = 1", NO_TABLE, "unknown-table"),
    err("SELECT * FROM Users_Auth WHERE id = 12", NO_TABLE, "wrong-case-table"),
    err("INSERT INTO nosuch (a) VALUES (1)", NO_TABLE, "insert-unknown-table"),
    err("DELETE FROM nosuch WHERE id = 1", NO_TABLE, "delete-unknown-table"),
]


@pytest.mark.parametrize("sql, error", ERRORS)
def test_error_then_connection_still_usable(db: Cursor, sql: str, error: tuple[int, str]) -> None:
    expect_error(db, sql, error)
    assert rows(db, "SELECT * FROM users_time WHERE id = 1") == [("1", "-1")]


@pytest.mark.parametrize("sql", [";", " ; ", "   "], ids=["semicolon", "spaced-semicolon", "spaces"])
def test_empty_statements_are_ok(db: Cursor, sql: str) -> None:
    assert expect_ok(db, sql) == (0, 0)


def test_statement_of_max_query_size_is_too_long(db: Cursor) -> None:
    filler = "x" * (1 << 20)
    expect_error(db, f"INSERT INTO pipes_messages (name, event, message) VALUES ('trust_big', 'e', '{filler}')",
                 (11, "Data is too long"))
    assert rows(db, "SELECT * FROM pipes_messages WHERE name = 'trust_big'") == []


def test_large_statement_below_the_limit_is_accepted(db: Cursor) -> None:
    body = "y" * 500_000
    expect_ok(db, f"INSERT INTO pipes_messages (name, event, message) VALUES ('trust_big', 'e', '{body}')")
    assert rows(db, "SELECT message FROM pipes_messages WHERE name = 'trust_big'") == [(body,)]


# ---------------------------------------------------------------- isolation

SETUP_A = [
    "INSERT INTO users_auth (id, hash) VALUES (1, 'secret')",
    "INSERT INTO users_data (id, data) VALUES (1, 'data')",
    "INSERT INTO users_messages (id, event, message) VALUES (1, 'e', 'queued')",
    "INSERT INTO pipes_settings (name, length) VALUES ('shared', 10)",
    "INSERT INTO pipes_messages (name, event, message) VALUES ('shared', 'e', 'history')",
    "INSERT INTO revoked_tokens (token) VALUES ('tok')",
]
READS = [
    "SELECT * FROM users_auth WHERE id = 1",
    "SELECT * FROM users_data WHERE id = 1",
    "SELECT * FROM users_messages WHERE id = 1",
    "SELECT * FROM pipes_settings WHERE name = 'shared'",
    "SELECT * FROM pipes_messages WHERE name = 'shared'",
    "SELECT * FROM revoked_tokens",
]


def test_dev_cannot_see_another_devs_data(server: ServerProcess, db: Cursor, dev: int) -> None:
    for sql in SETUP_A:
        db.execute(sql)
    assert all(len(rows(db, sql)) == 1 for sql in READS)
    with connection_as(server, other_dev(dev)) as other:
        assert [rows(other, sql) for sql in READS] == [[]] * len(READS)
