"""``stats_history``: analytic SELECTs, run by SQLite over the rows of one dev.

The statistics-over-time table is read by dashboards and BI tools with MySQL
date functions, ``GROUP BY``, ``DIV`` and the like (Grafana's macros expand to
``UNIX_TIMESTAMP(time) DIV 300 * 300`` and ``time BETWEEN FROM_UNIXTIME(a) AND
FROM_UNIXTIME(b)``). Rather than evaluate that ourselves, a query runs in an
in-memory SQLite database (the standard library's) holding the rows that the
stats store returned for the session's dev_id:

1. ``history_select`` checks the statement (only this table, known columns);
2. ``bounds`` reads the time range and channel the WHERE clause pins (``time
   BETWEEN``, ``>=``, ``<=``, ``=``, ``channel = '...'``), so only those rows are
   loaded; the full WHERE still runs in SQLite, so a bound is never wrong, at
   worst loose;
3. ``evaluate`` translates the MySQL query with sqlglot to SQLite, with MySQL's
   date functions as Python functions (``_functions``), runs it and types each
   result column as MySQL would (sqlglot's type annotation, then the values):
   ``DATETIME`` / ``DATE`` columns carry ``datetime`` / ``date`` values, counts
   are ``BIGINT``.

Times are UTC: ``time`` is a UTC ``DATETIME``, and ``FROM_UNIXTIME`` /
``UNIX_TIMESTAMP`` convert in UTC whatever the session's ``time_zone``
(Grafana's MySQL data source sets ``+00:00`` itself).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlglot import expressions as exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

from ..errors import SQLError
from ..hub import StatsRow
from . import codes
from ._functions import UNIX_COLUMN, for_typing, register, to_sqlite, utc_text
from ._statements import HistoryQuery
from ._tables import Table

__all__ = ["Bounds", "TypedRows", "bounds", "evaluate", "history_select"]

#: How a result column travels: MySQL's type names, mapped to wire types by the MySQL front.
ColumnKind = str  # "DATETIME" | "DATE" | "BIGINT" | "DOUBLE" | "TEXT"

#: A query is stopped after this long (a recursive CTE that never ends must not keep a worker thread).
MAX_SECONDS = 30.0
#: Longest string or blob a query may build (``randomblob(1e9)`` must not take a gigabyte).
MAX_VALUE_BYTES = 16 * 1024 * 1024


def _database(now: int) -> tuple[sqlite3.Connection, list[float]]:
    """An in-memory SQLite with MySQL's functions and bounds on time and value size; the list holds
    the deadline, set by ``_start_clock`` once our own rows are loaded."""
    db = sqlite3.connect(":memory:")
    register(db, now)
    db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    deadline = [float("inf")]
    db.set_progress_handler(lambda: int(time.monotonic() > deadline[0]), 10_000)
    return db, deadline


def _start_clock(deadline: list[float]) -> None:
    deadline[0] = time.monotonic() + MAX_SECONDS


def _failed(exc: Exception, deadline: list[float]) -> SQLError:
    if time.monotonic() > deadline[0]:
        return SQLError(codes.ERR_SYNTAX, f"Query stopped: it ran longer than {MAX_SECONDS:g} s")
    return SQLError(codes.ERR_SYNTAX, f"Syntax error in query ({exc})")


@dataclass(frozen=True, slots=True)
class Bounds:
    """What the query's WHERE pins: load only rows with ``since <= time <= until`` and this channel."""

    since: int | None = None
    until: int | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class TypedRows:
    columns: tuple[str, ...]
    kinds: tuple[ColumnKind, ...]
    rows: list[tuple[Any, ...]]


def history_select(e: exp.Select, table: Table) -> HistoryQuery:
    """Check a SELECT on the history table: it reads no other table (no CTE either), and every column it
    names is one of the table's or an alias."""
    if e.find(exp.With, exp.CTE) is not None:
        raise codes.syntax()  # a table of its own (and a recursive one could run forever)
    for node in e.find_all(exp.Table):
        if node.name != table.name:
            raise codes.syntax()  # a subquery on another table: only stats_history is here
    aliases = {p.alias for p in e.expressions if isinstance(p, exp.Alias)}
    for col in e.find_all(exp.Column):
        if not isinstance(col.this, exp.Star) and col.name not in table.columns and col.name not in aliases:
            raise codes.bad_column()
    return HistoryQuery(table, e)


# ---------------------------------------------------------------------- bounds


def _conjuncts(node: exp.Expr) -> Iterable[exp.Expr]:
    if isinstance(node, exp.Paren):
        yield from _conjuncts(node.this)
    elif isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    else:
        yield node


def _is_column(node: exp.Expr, name: str) -> bool:
    return isinstance(node, exp.Column) and node.name == name


class _Constants:
    """Evaluates constant expressions (``FROM_UNIXTIME(n)``, ``'2025-12-01'``, ``NOW() - INTERVAL 1 DAY``)."""

    def __init__(self, now: int) -> None:
        self.db, deadline = _database(now)
        _start_clock(deadline)

    def unix(self, node: exp.Expr) -> int | None:
        if any(True for _ in node.find_all(exp.Column)):
            return None
        wrapped = exp.Anonymous(this="cq_unix_timestamp", expressions=[node.copy()])
        try:
            value = self.db.execute("SELECT " + to_sqlite(wrapped)).fetchone()[0]
        except (sqlite3.Error, SqlglotError):
            return None
        return value if isinstance(value, int) else None

    def close(self) -> None:
        self.db.close()


def bounds(stmt: HistoryQuery, now: int) -> Bounds:
    """The rows a query can match at most (it may run SQLite: call it off the event loop)."""
    where = stmt.query.args.get("where")
    if where is None:
        return Bounds()
    since: int | None = None
    until: int | None = None
    channel: str | None = None
    constants = _Constants(now)
    try:
        for cond in _conjuncts(where.this):
            low = high = None
            if isinstance(cond, exp.Between) and _is_column(cond.this, "time"):
                low, high = constants.unix(cond.args["low"]), constants.unix(cond.args["high"])
            elif isinstance(cond, (exp.GTE, exp.GT, exp.LTE, exp.LT, exp.EQ)):
                left, right = cond.this, cond.expression
                if _is_column(right, "time"):  # 5 < time: time > 5
                    left, right = right, left
                    cond = {exp.GTE: exp.LTE, exp.GT: exp.LT, exp.LTE: exp.GTE, exp.LT: exp.GT}.get(
                        type(cond), exp.EQ)(this=left, expression=right)
                if _is_column(left, "time"):
                    value = constants.unix(right)
                    low = value if isinstance(cond, (exp.GTE, exp.GT, exp.EQ)) else None
                    high = value if isinstance(cond, (exp.LTE, exp.LT, exp.EQ)) else None
                elif (isinstance(cond, exp.EQ) and _is_column(left, "channel") and isinstance(right, exp.Literal)
                      and right.is_string):
                    channel = right.this
            if low is not None:
                since = low if since is None else max(since, low)
            if high is not None:
                until = high if until is None else min(until, high)
    finally:
        constants.close()
    return Bounds(since, until, channel)


# -------------------------------------------------------------------- evaluate

_TEMPORAL = {"DATETIME", "DATETIME64", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMPLTZ", "TIMESTAMPNTZ"}
_INTEGER = {"TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "UTINYINT", "USMALLINT", "UMEDIUMINT", "UINT",
            "UBIGINT", "BOOLEAN", "BIT"}
_FRACTION = {"DOUBLE", "FLOAT", "DECIMAL", "BIGDECIMAL"}


def _annotated(query: exp.Select, table: Table, count: int) -> list[str]:
    """sqlglot's idea of each output column's type (``UNKNOWN`` where it has none)."""
    declared = (t.split("(")[0].upper() for t in table.types)
    schema: dict[str, object] = {table.name: dict(zip(table.columns, declared, strict=True))}
    try:
        qualified = qualify(for_typing(query), schema=schema, dialect="mysql", validate_qualify_columns=False,
                            quote_identifiers=False)
        typed = annotate_types(qualified, schema=schema, dialect="mysql")
        kinds = [p.type.this.name if p.type is not None else "UNKNOWN" for p in typed.expressions]
    except (SqlglotError, KeyError, ValueError, TypeError, AttributeError):
        kinds = []
    return kinds if len(kinds) == count else ["UNKNOWN"] * count


def _kind(annotated: str, values: Sequence[Any]) -> ColumnKind:
    present = [v for v in values if v is not None]
    if annotated in _TEMPORAL or annotated == "DATE":
        parse = datetime.fromisoformat if annotated != "DATE" else date.fromisoformat
        try:
            for v in present:
                parse(v)
            return "DATETIME" if annotated != "DATE" else "DATE"
        except (TypeError, ValueError):
            return "TEXT"
    if any(isinstance(v, (str, bytes)) for v in present):
        return "TEXT"
    if any(isinstance(v, float) for v in present) or annotated in _FRACTION:
        return "DOUBLE"
    if present or annotated in _INTEGER:
        return "BIGINT"
    return "TEXT"


def _convert(kind: ColumnKind, value: Any) -> Any:
    if value is None:
        return None
    if kind == "DATETIME":
        return datetime.fromisoformat(value)
    if kind == "DATE":
        return date.fromisoformat(value)
    return value


def _names(query: exp.Select, table: Table) -> list[str]:
    names: list[str] = []
    for p in query.expressions:
        if isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star)):
            names.extend(table.columns)
        elif isinstance(p, exp.Alias):
            names.append(p.alias)
        elif isinstance(p, exp.Column):
            names.append(p.name)
        else:
            names.append(p.sql(dialect="mysql"))
    return names


def evaluate(stmt: HistoryQuery, rows: Iterable[StatsRow], now: int) -> TypedRows:
    """Run the query over ``rows`` (one dev's); synchronous: the MySQL front runs it in a worker thread."""
    table, query = stmt.table, stmt.query.copy()
    source = query.args["from_"].this
    source.set("db", None)
    source.set("catalog", None)
    projections: list[exp.Expr] = []
    for p in query.expressions:  # ``*`` is the declared columns (the loaded rows have one more)
        if isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star)):
            owner = p.table if isinstance(p, exp.Column) else ""
            projections.extend(exp.column(c, table=owner or None) for c in table.columns)
        else:
            projections.append(p)
    query.set("expressions", projections)
    db, deadline = _database(now)
    try:
        db.execute(f"CREATE TABLE {table.name} (time TEXT, channel TEXT, sessions INTEGER, users INTEGER, "
                   f"published INTEGER, delivered INTEGER, {UNIX_COLUMN} INTEGER)")
        texts: dict[int, str] = {}
        db.executemany(f"INSERT INTO {table.name} VALUES (?, ?, ?, ?, ?, ?, ?)", [
            (texts.get(r.time) or texts.setdefault(r.time, utc_text(r.time)), r.channel, r.sessions, r.users,
             r.published, r.delivered, r.time) for r in rows])
        _start_clock(deadline)
        try:
            cursor = db.execute(to_sqlite(query))
            result = cursor.fetchall()
        except (sqlite3.Error, SqlglotError, OverflowError) as exc:
            raise _failed(exc, deadline) from exc
        described = [d[0] for d in cursor.description or ()]
    finally:
        db.close()
    width = len(described)
    names = _names(stmt.query, table)
    if len(names) != width:
        names = described
    annotated = _annotated(stmt.query, table, width)
    kinds = tuple(_kind(annotated[i], [r[i] for r in result]) for i in range(width))
    converted = [tuple(_convert(k, v) for k, v in zip(kinds, r, strict=True)) for r in result]
    return TypedRows(tuple(names), kinds, converted)
