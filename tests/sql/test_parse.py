"""Unit tests of ``cometql.sql.parse``: SQL text -> statement values, or SQLError with CometQL's code.

No server: these pin down what the parser hands the executor (keys, column
order, LIMIT, which statements need the full query engine) and the errors it
raises itself (syntax, unknown table, read-only DELETE, missing key, columns).
"""

from __future__ import annotations

import pytest

from cometql.errors import SQLError
from cometql.sql import (
    TABLES,
    Delete,
    Describe,
    Insert,
    Passthrough,
    Select,
    ShowDatabases,
    ShowStatus,
    ShowTables,
    Statement,
    parse,
)

from ._cases import BAD_COLUMN, DUP_SELECT, NO_KEY, NO_KEY_DELETE, NO_TABLE, SYNTAX, read_only


def one(sql: str) -> Statement:
    [stmt] = parse(sql)
    return stmt


def error_of(sql: str) -> tuple[int, str]:
    with pytest.raises(SQLError) as caught:
        parse(sql)
    return caught.value.errno, caught.value.message


# ------------------------------------------------------------------ INSERT


@pytest.mark.parametrize("sql, table, columns, rows", [
    ("INSERT INTO pipes_messages (name, event, message) VALUES ('p', 'e', 'm')",
     "pipes_messages", ("name", "event", "message"), (("p", "e", "m"),)),
    ("INSERT INTO users_auth (id, hash) VALUES (1, 'h')", "users_auth", ("id", "hash"), ((1, "h"),)),
    ("INSERT INTO users_auth VALUES (1, 'h')", "users_auth", ("id", "hash"), ((1, "h"),)),
    ("INSERT INTO users_auth (hash, id) VALUES ('h', 1), ('g', 2)", "users_auth", ("hash", "id"),
     (("h", 1), ("g", 2))),
    ("INSERT INTO `users_data` (`id`, `data`) VALUES (-3, NULL)", "users_data", ("id", "data"), ((-3, None),)),
    ("insert into revoked_tokens (token) values ('t');", "revoked_tokens", ("token",), (("t",),)),
    ("INSERT INTO CometQL_v1.users_data (id, data) VALUES (1, 'x')", "users_data", ("id", "data"), ((1, "x"),)),
], ids=["fast-path", "sqlglot", "positional", "multi-row", "backticks-null-negative", "lower-case", "qualified"])
def test_insert(sql: str, table: str, columns: tuple[str, ...], rows: tuple[tuple[object, ...], ...]) -> None:
    assert one(sql) == Insert(TABLES[table], columns, rows)


@pytest.mark.parametrize("literal, value", [
    ("'it''s'", "it's"),
    ("'it\\'s'", "it's"),
    ('"say \\"hi\\""', 'say "hi"'),
    ('"a""b"', 'a"b'),
    ("'a\\nb\\tc'", "a\nb\tc"),
    ("'back\\\\slash'", "back\\slash"),
    ("'\\%\\_'", "\\%\\_"),
    ("''", ""),
    ("-5", -5),
    ("- 5", -5),
    ("12", 12),
    ("1.5", 1.5),
    ("NULL", None),
    ("TRUE", 1),
], ids=["doubled-quote", "backslash-quote", "double-quoted", "doubled-double", "newline-tab", "backslash",
        "like-escapes-kept", "empty", "negative", "negative-spaced", "int", "float", "null", "true"])
def test_literal_values(literal: str, value: object) -> None:
    stmt = one(f"INSERT INTO users_data (id, data) VALUES (1, {literal})")
    assert isinstance(stmt, Insert)
    assert stmt.rows == ((1, value),)


# ------------------------------------------------------------------ SELECT


def test_simple_select_is_a_key_lookup() -> None:
    assert one("SELECT * FROM users_auth WHERE id = 3") == Select(TABLES["users_auth"], ("id", "hash"), (3,))


@pytest.mark.parametrize("where, keys", [
    ("id = 3", (3,)),
    ("3 = id", (3,)),
    ("id IN (3, 4, 5)", (3, 4, 5)),
    ("id = 3 OR id = 4", (3, 4)),
    ("(id = 3 OR id IN (4, 5))", (3, 4, 5)),
    ("id = '7'", ("7",)),
    ("id = -2", (-2,)),
], ids=["eq", "eq-reversed", "in", "or", "or-in-parens", "string", "negative"])
def test_select_keys(where: str, keys: tuple[object, ...]) -> None:
    stmt = one(f"SELECT hash, id FROM users_auth WHERE {where}")
    assert isinstance(stmt, Select)
    assert (stmt.columns, stmt.keys, stmt.query) == (("hash", "id"), keys, None)


@pytest.mark.parametrize("tail, offset, limit", [
    ("", 0, None), ("LIMIT 2", 0, 2), ("LIMIT 1, 2", 1, 2), ("LIMIT 2 OFFSET 1", 1, 2), ("LIMIT 0", 0, 0),
])
def test_select_limit(tail: str, offset: int, limit: int | None) -> None:
    stmt = one(f"SELECT * FROM users_time WHERE id IN (1, 2, 3) {tail}")
    assert isinstance(stmt, Select)
    assert (stmt.offset, stmt.limit) == (offset, limit)


@pytest.mark.parametrize("sql", [
    "SELECT COUNT(*) FROM users_auth WHERE id IN (1, 2)",
    "SELECT * FROM users_auth WHERE id IN (1, 2) ORDER BY id DESC",
    "SELECT * FROM users_auth WHERE id IN (1, 2) AND hash = 'x'",
    "SELECT DISTINCT hash FROM users_auth WHERE id IN (1, 2)",
    "SELECT name, COUNT(*) FROM users_in_pipes GROUP BY name",
    "SELECT * FROM pipes WHERE users > 1",
    "SELECT id AS user FROM users_auth WHERE id = 1",
], ids=["count", "order-by", "and-filter", "distinct", "group-by", "filter-scan", "alias"])
def test_select_needing_the_query_engine_keeps_the_query(sql: str) -> None:
    stmt = one(sql)
    assert isinstance(stmt, Select) and stmt.query is not None


@pytest.mark.parametrize("table", ["pipes", "users_in_pipes", "users_time", "revoked_tokens"])
def test_scan_tables_select_without_key(table: str) -> None:
    stmt = one(f"SELECT * FROM {table}")
    assert isinstance(stmt, Select) and stmt.keys is None and stmt.columns == TABLES[table].columns


@pytest.mark.parametrize("table", ["users_auth", "users_data", "users_messages", "pipes_messages", "pipes_settings"])
def test_keyed_tables_select_without_key(table: str) -> None:
    assert error_of(f"SELECT * FROM {table}") == NO_KEY


@pytest.mark.parametrize("sql, error", [
    ("SELECT nosuch FROM users_auth WHERE id = 1", BAD_COLUMN),
    ("SELECT HASH FROM users_auth WHERE id = 1", BAD_COLUMN),
    ("SELECT * FROM users_auth WHERE ID = 1", BAD_COLUMN),
    ("SELECT * FROM users_auth WHERE id = 1 ORDER BY nosuch", BAD_COLUMN),
    ("SELECT COUNT(nosuch) FROM users_auth WHERE id = 1", BAD_COLUMN),
    ("SELECT id, id FROM users_auth WHERE id = 1", DUP_SELECT),
    ("SELECT * FROM users_auth WHERE hash = 'x'", NO_KEY),
    ("SELECT * FROM users_auth WHERE id > 1", NO_KEY),
    ("SELECT * FROM Users_Auth WHERE id = 1", NO_TABLE),
    ("SELECT * FROM other_db.users_auth WHERE id = 1", NO_TABLE),
    ("SELECT * FROM users_auth, users_data WHERE id = 1", SYNTAX),
    ("SELECT * FROM (SELECT 1) AS t", SYNTAX),
], ids=["unknown-column", "wrong-case-column", "wrong-case-where", "unknown-order", "unknown-in-function",
        "duplicate", "no-key", "operator-not-a-key-lookup", "wrong-case-table", "other-db", "two-tables",
        "subquery"])
def test_select_errors(sql: str, error: tuple[int, str]) -> None:
    assert error_of(sql) == error


# ------------------------------------------------------------------ DELETE


@pytest.mark.parametrize("sql, table, column, keys", [
    ("DELETE FROM users_auth WHERE id = 3", "users_auth", "id", (3,)),
    ("DELETE FROM users_auth WHERE id IN (3, 4)", "users_auth", "id", (3, 4)),
    ("DELETE FROM pipes_messages WHERE name = 'p10'", "pipes_messages", "name", ("p10",)),
    ("DELETE FROM pipes_messages WHERE id IN ('a-b', 'c-d')", "pipes_messages", "id", ("a-b", "c-d")),
    ("DELETE FROM revoked_tokens WHERE token = 't'", "revoked_tokens", "token", ("t",)),
    ("DELETE FROM users_messages WHERE id = 1 LIMIT 5", "users_messages", "id", (1,)),
], ids=["eq", "in", "by-name", "by-message-id", "token", "limit-ignored"])
def test_delete(sql: str, table: str, column: str, keys: tuple[object, ...]) -> None:
    assert one(sql) == Delete(TABLES[table], column, keys)


@pytest.mark.parametrize("sql, error", [
    ("DELETE FROM pipes WHERE name = 'abc'", read_only("pipes")),
    ("DELETE FROM users_in_pipes WHERE name = 'abc'", read_only("users_in_pipes")),
    ("DELETE FROM users_time WHERE id = 1", read_only("users_time")),
    ("DELETE FROM users_auth", NO_KEY),
    ("DELETE FROM users_auth WHERE hash = 'x'", NO_KEY),
    ("DELETE FROM revoked_tokens", NO_KEY_DELETE),
    ("DELETE FROM users_auth WHERE nosuch = 1", BAD_COLUMN),
    ("DELETE FROM nosuch WHERE id = 1", NO_TABLE),
], ids=["pipes", "users_in_pipes", "users_time", "no-where", "no-key", "revoked-no-where", "unknown-column",
        "unknown-table"])
def test_delete_errors(sql: str, error: tuple[int, str]) -> None:
    assert error_of(sql) == error


def test_insert_into_read_only_table_is_parsed_and_refused_by_execute() -> None:
    # the parser only builds the Insert; the executor owns the ERR 10 (checked over the wire)
    assert isinstance(one("INSERT INTO pipes (name, users) VALUES ('abc', 1)"), Insert)


# -------------------------------------------------------------------- other


@pytest.mark.parametrize("sql, stmt", [
    ("SHOW TABLES", ShowTables()),
    ("show databases", ShowDatabases()),
    ("SHOW STATUS", ShowStatus(False)),
    ("SHOW SESSION STATUS", ShowStatus(False)),
    ("SHOW GLOBAL STATUS", ShowStatus(True)),
    ("DESCRIBE users_auth", Describe(TABLES["users_auth"])),
    ("DESC pipes", Describe(TABLES["pipes"])),
    ("SHOW COLUMNS FROM users_data", Describe(TABLES["users_data"])),
    ("SHOW FULL COLUMNS IN revoked_tokens", Describe(TABLES["revoked_tokens"])),
], ids=["tables", "databases", "status", "session-status", "global-status", "describe", "desc", "columns-from",
        "full-columns-in"])
def test_show_and_describe(sql: str, stmt: Statement) -> None:
    assert one(sql) == stmt


@pytest.mark.parametrize("sql", [
    "SET NAMES utf8", "SET autocommit=1", "SELECT 1", "SELECT @@version_comment LIMIT 1", "SELECT DATABASE()",
    "USE CometQL_v1", "SHOW VARIABLES LIKE 'lower_case%'", "SELECT * FROM information_schema.tables",
])
def test_session_statements_pass_through(sql: str) -> None:
    assert isinstance(one(sql), Passthrough)


@pytest.mark.parametrize("sql", [
    "UPDATE users_auth SET hash = 'x' WHERE id = 1",
    "REPLACE INTO users_auth (id, hash) VALUES (1, 'a')",
    "SELECT x FROM",
    "INSERT INTO users_auth (id, hash) VALUES (1, CONCAT('a', 'b'))",
    "INSERT INTO users_auth (id, hash) VALUES (1, id)",
    "INSERT INTO users_auth (id, hash) SELECT 1, 'a'",
    "SELECT * FROM users_auth WHERE id = 1 UNION SELECT * FROM users_auth WHERE id = 2",
    "DROP TABLE users_auth",
    "CREATE TABLE t (a INT)",
    "TRUNCATE TABLE users_auth",
    "SELECT * FROM users_auth WHERE id = 1 LIMIT -1",
], ids=["update", "replace", "incomplete", "function-value", "column-value", "insert-select", "union",
        "drop", "create", "truncate", "negative-limit"])
def test_syntax_errors(sql: str) -> None:
    assert error_of(sql) == SYNTAX


def test_multi_statements_give_one_statement_each() -> None:
    stmts = parse("SELECT * FROM users_time WHERE id = 1; INSERT INTO users_auth (id, hash) VALUES (1, 'a');")
    assert [type(s) for s in stmts] == [Select, Insert]


def test_comments_are_ignored() -> None:
    commented = one("/* a */ SELECT * FROM users_auth -- b\n WHERE id = 3 # c")
    assert commented == one("SELECT * FROM users_auth WHERE id = 3")
