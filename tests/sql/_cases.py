"""Shared helpers for the CometQL statement tests.

Two ways to run a statement:

* over the wire, with the PyMySQL cursor of the ``db`` fixture (``expect_error``,
  ``expect_ok``, ``rows``): what a backend really sees;
* in-process (``Local``): ``cometql.sql.parse`` + ``execute`` against a bare
  ``Hub``, for the live statistics that need browser sessions.

``KeyedTableTests`` holds the statement forms every keyed, writable table must
support; each table's test module subclasses it with that table's
``TableSpec``, so the forms are written once and run per table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pytest
from pymysql.cursors import Cursor

from cometql.hub import ConnInfo, Hub, ListSubscriber
from cometql.sql import Context, Ok, Result, Rows, execute, parse

from ..hub._helpers import apply, make_hub
from ..servers import ServerProcess

PASSWORD = "CometQLPassword"

# The exact (code, message) pairs of cometql-wire.md §4.
NO_KEY = (13, "Selection without transferring the requested values of the primary key is not supported")
NO_KEY_DELETE = (13, "Deleting without transferring the requested values of the primary key is not supported")
BAD_COLUMN = (14, "Not a specific column")
COLUMNS_LIST = (14, "Error in columns list")
DUP_INSERT = (13, "Each column in the insert used only once")
DUP_SELECT = (13, "Each column in the select used only once")
NO_TABLE = (15, "Table doesn't exist")
SYNTAX = (3, "Syntax error in query")
NEGATIVE_ID = (12, "The id field must be non-negative")
CHANNEL_CHARS = (12, "The channel name can contain only the characters A-Za-z0-9_-")
CHANNEL_LONG = (11, "Channel name is too long")
CHANNEL_SHORT = (17, "Channel name is too short")
EVENT_LONG = (11, "Channel event_name is too long")


def required(column: str) -> tuple[int, str]:
    return (12, f"field `{column}` is required")


def read_only(table: str) -> tuple[int, str]:
    return (10, f"Table `{table}` is read only")


def err(sql: str, error: tuple[int, str], id: str) -> Any:
    """One error case for ``pytest.mark.parametrize("sql, error", ...)``."""
    return pytest.param(sql, error, id=id)


# ----------------------------------------------------------------- the wire


def expect_error(db: Cursor, sql: str, error: tuple[int, str]) -> None:
    """The statement fails with exactly this CometQL code and message."""
    with pytest.raises(pymysql.MySQLError) as caught:
        db.execute(sql)
    assert caught.value.args == error


def error_cases_test(cases: list[Any]) -> Any:
    """The parametrized test every table module runs over its ERRORS list."""

    @pytest.mark.parametrize("sql, error", cases)
    def test_error(db: Cursor, sql: str, error: tuple[int, str]) -> None:
        expect_error(db, sql, error)

    return test_error


def expect_ok(db: Cursor, sql: str) -> tuple[int, int]:
    """Run a statement answered by an OK packet; return (affected_rows, insert_id)."""
    affected = db.execute(sql)
    assert db.description is None, f"{sql!r} returned a result set, not OK"
    return affected, db.lastrowid


def rows(db: Cursor, sql: str) -> list[tuple[str, ...]]:
    db.execute(sql)
    return [tuple(r) for r in db.fetchall()]


def columns(db: Cursor, sql: str) -> list[str]:
    db.execute(sql)
    db.fetchall()
    return [d[0] for d in db.description]


def other_dev(dev: int) -> int:
    """A second dev_id for isolation tests: the ``dev`` fixture counts up from 1000, far below this."""
    return dev + 50_000


@contextmanager
def connection_as(server: ServerProcess, user: str | int, **kw: Any) -> Iterator[Cursor]:
    """A second PyMySQL connection (e.g. as another dev), closed afterwards."""
    conn = server.connect(user, **kw)
    try:
        yield conn.cursor()
    finally:
        conn.close()


# --------------------------------------------------------------- in-process


@dataclass
class Local:
    """A hub with the SQL layer on top, no server: browser sessions are ListSubscribers."""

    hub: Hub = field(default_factory=make_hub)
    dev: int = 1
    now: int = 1_700_000_000
    _next_conn: int = 1

    def run(self, sql: str, dev: int | None = None) -> Result:
        """Parse and execute, then apply the effects as the engine would (minus the store)."""
        result: Result | None = None
        for stmt in parse(sql):
            effects, result = execute(stmt, self.hub, Context(self.dev if dev is None else dev, self.now))
            apply(self.hub, effects)
        assert result is not None
        return result

    def rows(self, sql: str, dev: int | None = None) -> list[tuple[Any, ...]]:
        result = self.run(sql, dev)
        assert isinstance(result, Rows)
        return result.rows

    def ok(self, sql: str) -> Ok:
        result = self.run(sql)
        assert isinstance(result, Ok)
        return result

    def join(self, channels: list[str], user_id: int = 0, dev: int | None = None, **info: str) -> ListSubscriber:
        """Open a browser session (authorized when user_id > 0) subscribed to ``channels``."""
        sub = ListSubscriber(self._next_conn, self.dev if dev is None else dev, user_id, ConnInfo(**info))
        self._next_conn += 1
        apply(self.hub, self.hub.connect(sub, self.now))
        apply(self.hub, self.hub.subscribe(sub, channels, self.now))
        return sub

    def leave(self, sub: ListSubscriber) -> None:
        apply(self.hub, self.hub.disconnect(sub, self.now))


# ------------------------------------------------- forms of a keyed table


@dataclass(frozen=True)
class TableSpec:
    """What the generic statement-form tests need to know about one writable table.

    ``rows`` are three rows to insert (column -> SQL literal), in ascending key
    order; ``shown`` names stable columns (the key first) whose values, as the
    wire returns them, are ``expected``; ``oks`` is (affected_rows, insert_id)
    of each row's INSERT (cometql-wire.md §2). ``positional`` is a VALUES tuple
    for every declared column and the ``shown`` values it produces.
    """

    name: str
    columns: tuple[str, ...]
    key: str
    rows: tuple[dict[str, str], ...]
    shown: tuple[str, ...]
    expected: tuple[tuple[str, ...], ...]
    oks: tuple[tuple[int, int], ...]
    positional: tuple[str, tuple[str, ...]]
    scan: bool = False
    delete_no_key: tuple[int, str] = NO_KEY

    def insert(self, row: dict[str, str]) -> str:
        return f"INSERT INTO {self.name} ({', '.join(row)}) VALUES ({', '.join(row.values())})"

    def key_literal(self, i: int) -> str:
        return self.rows[i][self.key]

    def all_keys(self) -> str:
        return ", ".join(self.key_literal(i) for i in range(len(self.rows)))


class KeyedTableTests:
    """Statement forms of a writable keyed table; subclasses set ``spec``."""

    spec: TableSpec

    @pytest.fixture
    def filled(self, db: Cursor) -> Cursor:
        for row in self.spec.rows:
            db.execute(self.spec.insert(row))
        return db

    def select(self, db: Cursor, cols: tuple[str, ...], where: str, tail: str = "") -> list[tuple[str, ...]]:
        quoted = ", ".join(f"`{c}`" for c in cols)
        return rows(db, f"SELECT {quoted} FROM {self.spec.name} WHERE {where} {tail}")

    # INSERT

    def test_insert_with_column_list_returns_affected_rows_and_insert_id(self, db: Cursor) -> None:
        s = self.spec
        assert [expect_ok(db, s.insert(row)) for row in s.rows] == list(s.oks)
        assert sorted(self.select(db, s.shown, f"{s.key} IN ({s.all_keys()})")) == sorted(s.expected)

    def test_positional_insert_takes_every_declared_column(self, db: Cursor) -> None:
        s = self.spec
        values, shown = s.positional
        expect_ok(db, f"INSERT INTO {s.name} VALUES {values}")
        key_value = shown[0]
        assert self.select(db, s.shown, f"`{s.key}` = '{key_value}'") == [shown]

    def test_positional_insert_with_wrong_count(self, db: Cursor) -> None:
        values = ", ".join(["'1'"] * (len(self.spec.columns) + 1))
        expect_error(db, f"INSERT INTO {self.spec.name} VALUES ({values})", COLUMNS_LIST)

    def test_insert_count_mismatch(self, db: Cursor) -> None:
        row = self.spec.rows[0]
        sql = f"INSERT INTO {self.spec.name} ({', '.join(row)}) VALUES ({', '.join(row.values())}, 'extra')"
        expect_error(db, sql, COLUMNS_LIST)

    def test_insert_unknown_column(self, db: Cursor) -> None:
        expect_error(db, f"INSERT INTO {self.spec.name} ({self.spec.key}, nosuch) VALUES ('1', '2')", BAD_COLUMN)

    def test_insert_wrong_case_column(self, db: Cursor) -> None:
        upper = self.spec.key.upper()
        expect_error(db, f"INSERT INTO {self.spec.name} ({upper}) VALUES ({self.spec.key_literal(0)})", BAD_COLUMN)

    def test_insert_duplicate_column(self, db: Cursor) -> None:
        k = self.spec.key
        lit = self.spec.key_literal(0)
        expect_error(db, f"INSERT INTO {self.spec.name} ({k}, {k}) VALUES ({lit}, {lit})", DUP_INSERT)

    def test_wrong_case_table_name(self, db: Cursor) -> None:
        expect_error(db, self.spec.insert(self.spec.rows[0]).replace(self.spec.name, self.spec.name.upper()),
                     NO_TABLE)
        expect_error(db, f"SELECT * FROM {self.spec.name.title()} WHERE {self.spec.key} = {self.spec.key_literal(0)}",
                     NO_TABLE)

    # SELECT

    def test_select_star_gives_declared_columns(self, filled: Cursor) -> None:
        s = self.spec
        assert columns(filled, f"SELECT * FROM {s.name} WHERE {s.key} = {s.key_literal(0)}") == list(s.columns)

    def test_select_column_list_in_another_order(self, filled: Cursor) -> None:
        s = self.spec
        cols = s.shown[::-1]
        assert columns(filled, f"SELECT {', '.join(f'`{c}`' for c in cols)} FROM {s.name} "
                               f"WHERE {s.key} = {s.key_literal(1)}") == list(cols)
        assert self.select(filled, cols, f"{s.key} = {s.key_literal(1)}") == [s.expected[1][::-1]]

    def test_where_equals(self, filled: Cursor) -> None:
        s = self.spec
        assert self.select(filled, s.shown, f"{s.key} = {s.key_literal(2)}") == [s.expected[2]]

    def test_where_in(self, filled: Cursor) -> None:
        s = self.spec
        got = self.select(filled, s.shown, f"{s.key} IN ({s.key_literal(0)}, {s.key_literal(2)})")
        assert sorted(got) == sorted([s.expected[0], s.expected[2]])

    def test_where_in_with_duplicates_gives_one_row(self, filled: Cursor) -> None:
        s = self.spec
        lit = s.key_literal(1)
        assert self.select(filled, s.shown, f"{s.key} IN ({lit}, {lit}, {lit})") == [s.expected[1]]

    def test_where_or(self, filled: Cursor) -> None:
        s = self.spec
        got = self.select(filled, s.shown, f"{s.key} = {s.key_literal(0)} OR {s.key} = {s.key_literal(1)}")
        assert sorted(got) == sorted(s.expected[:2])

    def test_order_by_desc(self, filled: Cursor) -> None:
        s = self.spec
        got = self.select(filled, s.shown, f"{s.key} IN ({s.all_keys()})", f"ORDER BY `{s.key}` DESC")
        assert got == list(s.expected[::-1])

    def test_limit_offset_count(self, filled: Cursor) -> None:
        s = self.spec
        got = self.select(filled, s.shown, f"{s.key} IN ({s.all_keys()})", f"ORDER BY `{s.key}` LIMIT 1, 1")
        assert got == [s.expected[1]]

    def test_count_star(self, filled: Cursor) -> None:
        s = self.spec
        assert rows(filled, f"SELECT COUNT(*) FROM {s.name} WHERE {s.key} IN ({s.all_keys()})") == [("3",)]

    def test_select_unknown_column(self, filled: Cursor) -> None:
        s = self.spec
        expect_error(filled, f"SELECT nosuch FROM {s.name} WHERE {s.key} = {s.key_literal(0)}", BAD_COLUMN)

    def test_select_wrong_case_column(self, filled: Cursor) -> None:
        s = self.spec
        expect_error(filled, f"SELECT {s.shown[-1].upper()} FROM {s.name} WHERE {s.key} = {s.key_literal(0)}",
                     BAD_COLUMN)

    def test_where_unknown_column(self, filled: Cursor) -> None:
        s = self.spec
        expect_error(filled, f"SELECT * FROM {s.name} WHERE {s.key} = {s.key_literal(0)} AND nosuch = 1", BAD_COLUMN)

    def test_select_duplicate_column(self, filled: Cursor) -> None:
        s = self.spec
        expect_error(filled, f"SELECT {s.key}, {s.key} FROM {s.name} WHERE {s.key} = {s.key_literal(0)}", DUP_SELECT)

    def test_select_without_key(self, filled: Cursor) -> None:
        s = self.spec
        if s.scan:
            assert sorted(self.select(filled, s.shown, "1 = 1")) == sorted(s.expected)
        else:
            expect_error(filled, f"SELECT * FROM {s.name}", NO_KEY)

    # DELETE

    def test_delete_by_key(self, filled: Cursor) -> None:
        s = self.spec
        assert expect_ok(filled, f"DELETE FROM {s.name} WHERE {s.key} = {s.key_literal(0)}") == (0, 0)
        assert sorted(self.select(filled, s.shown, f"{s.key} IN ({s.all_keys()})")) == sorted(s.expected[1:])

    def test_delete_by_key_list(self, filled: Cursor) -> None:
        s = self.spec
        sql = f"DELETE FROM {s.name} WHERE {s.key} IN ({s.key_literal(0)}, {s.key_literal(2)})"
        assert expect_ok(filled, sql) == (0, 0)
        assert self.select(filled, s.shown, f"{s.key} IN ({s.all_keys()})") == [s.expected[1]]

    def test_delete_without_key(self, filled: Cursor) -> None:
        expect_error(filled, f"DELETE FROM {self.spec.name}", self.spec.delete_no_key)
