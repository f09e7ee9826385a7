"""SQL text -> CometQL statements.

A plain INSERT of literal rows goes through the regex fast path; anything else is
first split and measured by the scanner (``_scan.py``, which also lifts long
literal lists out), then each statement is parsed by sqlglot (MySQL dialect)
and mapped here. Statements that are not about CometQL's tables (SET, USE,
``SELECT @@var``, ...) come back as ``Passthrough`` for mysql-mimic's own
handlers. Errors are raised as ``SQLError`` with CppComet's codes and messages.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import cast

import sqlglot
from sqlglot import expressions as exp
from sqlglot.errors import SqlglotError

from ..errors import SQLError
from . import codes
from ._fastpath import fast_insert
from ._history import history_select
from ._scan import Limits, Piece, split
from ._statements import (
    Delete,
    Describe,
    Insert,
    Passthrough,
    Select,
    ShowCreateTable,
    ShowDatabases,
    ShowStatus,
    ShowTables,
    Statement,
)
from ._tables import DATABASE, STATS_HISTORY, TABLES, Table
from ._values import Value

__all__ = ["expand", "parse", "parse_expression", "parse_piece"]

DEFAULT_LIMITS = Limits()
#: Values of IN lists sqlglot's executor may test (its optimizer and code generation grow faster than the list).
EXECUTOR_VALUES = 1000
_INFO_SCHEMAS = {"information_schema", "mysql", "performance_schema", "sys"}
#: sqlglot knows only ``SHOW [FULL] COLUMNS FROM t``; MySQL (and CppComet) also take ``IN t``.
_SHOW_COLUMNS_IN = re.compile(r"\A(\s*show\s+(?:full\s+)?columns\s+)in(?=\s)", re.I)
#: Texts of passthrough statements kept parsed (``SET NAMES utf8mb4``, ``SET AUTOCOMMIT = 0``, ``SELECT 1``,
#: ``select @@version_comment limit 1``: what drivers send on every connect). sqlglot parses each in 100-260 µs;
#: a copy of the kept tree takes 13-40 µs. Bounded in count and in text length; least recently used leaves first.
PASSTHROUGH_CACHE_SIZE = 256
PASSTHROUGH_CACHE_TEXT = 256
_passthrough_cache: OrderedDict[str, exp.Expression] = OrderedDict()


def parse(sql: str, limits: Limits = DEFAULT_LIMITS) -> list[Statement]:
    """Parse one COM_QUERY text (possibly several statements) into statements, in one go.

    The server does the same in slices (``split``, then ``parse_piece`` per
    statement, with pauses between); this is for tools and tests.
    """
    fast = fast_insert(sql, limits.rows)
    if fast is not None:
        return [fast]
    pieces: list[Piece] = []
    for _ in split(sql, limits, pieces):
        pass
    return [stmt for piece in pieces if (stmt := parse_piece(piece, limits)) is not None]


def parse_piece(piece: Piece, limits: Limits) -> Statement | None:
    """One statement the scanner split off (None: nothing to run, e.g. only a comment).

    A passthrough statement seen before is not parsed again: it is handed out as a copy of the tree kept
    the first time (mysql-mimic's middlewares change the tree they are given, so the kept one is never
    handed out itself).
    """
    cacheable = len(piece.sql) <= PASSTHROUGH_CACHE_TEXT and not piece.values and not piece.rows
    if cacheable:
        kept = _passthrough_cache.get(piece.sql)
        if kept is not None:
            _passthrough_cache.move_to_end(piece.sql)
            return Passthrough(kept.copy())
    stmt = _parse_piece(piece, limits)
    if cacheable and type(stmt) is Passthrough:
        _passthrough_cache[piece.sql] = stmt.expression.copy()
        if len(_passthrough_cache) > PASSTHROUGH_CACHE_SIZE:
            _passthrough_cache.popitem(last=False)
    return stmt


def _parse_piece(piece: Piece, limits: Limits) -> Statement | None:
    sql = _SHOW_COLUMNS_IN.sub(r"\1FROM", piece.sql, count=1)
    try:
        expressions = sqlglot.parse(sql, read="mysql")
    except RecursionError:
        raise codes.too_deep(limits.depth) from None
    except (SqlglotError, ValueError, IndexError) as exc:
        raise codes.syntax() from exc
    found = [e for e in expressions if e is not None]
    if not found:
        return None
    if len(found) > 1:  # pragma: no cover - the scanner split at every ';'
        raise codes.syntax()
    try:
        return parse_expression(found[0], piece)
    except RecursionError:
        raise codes.too_deep(limits.depth) from None


def parse_expression(e: exp.Expr, piece: Piece | None = None) -> Statement:
    piece = piece or Piece("")
    if isinstance(e, exp.Insert):
        return _insert(e, piece.rows)
    if isinstance(e, exp.Select):
        table = _table_of_select(e)
        if table is not None and table.name == STATS_HISTORY:
            return history_select(cast(exp.Select, expand(e, piece.values)), table)
        if table is None:
            return Passthrough(expand(e, piece.values))
        return _select(e, table, piece.values)
    if isinstance(e, exp.Delete):
        return _delete(e, piece.values)
    if isinstance(e, exp.Show):
        return _show(e)
    if isinstance(e, exp.Describe):
        if isinstance(e.this, exp.Table):
            return Describe(_table(e.this))
        raise codes.syntax()
    if isinstance(e, (exp.Update, exp.Command, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.TruncateTable)):
        raise codes.syntax()
    if isinstance(e, (exp.Union, exp.Intersect, exp.Except, exp.Subquery)):
        raise codes.syntax()
    if isinstance(e, exp.Expression):  # every node sqlglot builds; ``Expr`` is only their common base
        return Passthrough(expand(e, piece.values))
    raise codes.syntax()


def _lifted(nodes: list[exp.Expr], lifted: Mapping[str, tuple[object, ...]]) -> tuple[object, ...] | None:
    """The list the scanner lifted out where ``nodes`` is its one placeholder, else None."""
    if len(nodes) == 1 and isinstance(nodes[0], exp.Placeholder):
        return lifted.get(nodes[0].name)
    return None


def _literal_node(value: Value) -> exp.Expression:
    if value is None:
        return exp.null()
    if isinstance(value, str):
        return exp.Literal.string(value)
    return exp.Literal.number(value)


def expand(e: exp.Expression, values: Mapping[str, tuple[Value, ...]]) -> exp.Expression:
    """``e`` with each lifted IN list put back as literal nodes (for sqlglot's executor and mysql-mimic)."""
    if not values:
        return e
    values = _kept(e, values)
    for node in list(e.find_all(exp.Placeholder)):
        found = values.get(node.name)
        if found is not None and isinstance(node.parent, exp.In):
            node.parent.set("expressions", [_literal_node(v) for v in found])
    return e


# ------------------------------------------------------------------- helpers


def _table(node: exp.Expr) -> Table:
    """Our table for a table reference, or ERR 15. Names are case-sensitive, lower case."""
    if not isinstance(node, exp.Table) or node.args.get("catalog"):
        raise codes.no_table()
    db = node.text("db")
    if db and db != DATABASE and not db.startswith("db_"):
        raise codes.no_table()
    table = TABLES.get(node.name)
    if table is None:
        raise codes.no_table()
    return table


def _table_of_select(e: exp.Select) -> Table | None:
    """The virtual table a SELECT reads, or None when it reads none (or information_schema)."""
    source = e.args.get("from_")
    if source is None:
        return None
    node = source.this
    if isinstance(node, exp.Table) and node.text("db").lower() in _INFO_SCHEMAS:
        return None
    if e.args.get("joins") or not isinstance(node, exp.Table):
        raise codes.syntax()
    return _table(node)


def literal(node: exp.Expr) -> Value:
    """A literal's value, or ERR 3 for anything computed (functions, columns, subqueries)."""
    if isinstance(node, exp.Paren):
        return literal(node.this)
    if isinstance(node, exp.Literal):
        text: str = node.this
        if node.is_string:
            return text
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                raise codes.syntax() from None
    if isinstance(node, exp.Neg):
        value = literal(node.this)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
        raise codes.syntax()
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return int(bool(node.this))
    raise codes.syntax()


def _insert(e: exp.Insert, lifted: Mapping[str, tuple[tuple[Value, ...], ...]]) -> Insert:
    target = e.this
    if isinstance(target, exp.Schema):
        table = _table(target.this)
        columns = tuple(col.name for col in target.expressions)
    else:
        table = _table(target)
        columns = table.columns
    values = e.expression
    if not isinstance(values, exp.Values) or e.args.get("conflict") or e.args.get("returning"):
        raise codes.syntax()
    if len(values.expressions) == 1 and isinstance(values.expressions[0], exp.Tuple):
        rows = _lifted(values.expressions[0].expressions, lifted)
        if rows is not None:
            return Insert(table, columns, rows)  # type: ignore[arg-type]  # the scanner lifted rows here
    return Insert(table, columns, tuple(
        tuple(literal(v) for v in (row.expressions if isinstance(row, exp.Tuple) else [row]))
        for row in values.expressions
    ))


def _columns_in(node: exp.Expr | None) -> Iterable[exp.Column]:
    if node is None:
        return ()
    return node.find_all(exp.Column)


def _check_columns(table: Table, nodes: Iterable[exp.Column], aliases: frozenset[str] | set[str] = frozenset()) -> None:
    for col in nodes:
        if col.name not in table.all_columns and col.name not in aliases:
            raise codes.bad_column()


def key_values(cond: exp.Expr, keys: tuple[str, ...],
               lifted: Mapping[str, tuple[Value, ...]] = {}) -> tuple[str, tuple[Value, ...]] | None:  # noqa: B006
    """The key column and the values a WHERE condition pins it to, if it does.

    ``k = v``, ``k IN (...)``, their ORs, and ANDs where one side pins the key.
    """
    if isinstance(cond, exp.Paren):
        return key_values(cond.this, keys, lifted)
    if isinstance(cond, exp.EQ):
        for col, val in ((cond.this, cond.expression), (cond.expression, cond.this)):
            if isinstance(col, exp.Column) and col.name in keys and not isinstance(val, exp.Column):
                return col.name, (literal(val),)
        return None
    if isinstance(cond, exp.In):
        col = cond.this
        if isinstance(col, exp.Column) and col.name in keys and cond.expressions and not cond.args.get("query"):
            found = _lifted(cond.expressions, lifted)
            return col.name, found if found is not None else tuple(literal(v) for v in cond.expressions)  # type: ignore[return-value]
        return None
    if isinstance(cond, exp.Or):
        left, right = key_values(cond.this, keys, lifted), key_values(cond.expression, keys, lifted)
        if left and right and left[0] == right[0]:
            return left[0], left[1] + right[1]
        return None
    if isinstance(cond, exp.And):
        return key_values(cond.this, keys, lifted) or key_values(cond.expression, keys, lifted)
    return None


def _only_keys(cond: exp.Expr) -> bool:
    """True when the condition is nothing but key equalities/IN lists joined by OR."""
    if isinstance(cond, exp.Paren):
        return _only_keys(cond.this)
    if isinstance(cond, exp.Or):
        return _only_keys(cond.this) and _only_keys(cond.expression)
    return isinstance(cond, (exp.EQ, exp.In))


def _int_arg(node: exp.Expr | None) -> int | None:
    if node is None:
        return None
    value = literal(node.args.get("expression") or node.this)
    if not isinstance(value, int) or value < 0:
        raise codes.syntax()
    return value


def _select(e: exp.Select, table: Table, lifted: Mapping[str, tuple[Value, ...]]) -> Select:
    out: list[str] = []
    simple = not any(e.args.get(k) for k in ("group", "having", "order", "distinct", "qualify", "windows"))
    aliases = {p.alias for p in e.expressions if isinstance(p, exp.Alias)}
    for p in e.expressions:
        if isinstance(p, exp.Star):
            out.extend(table.columns)
        elif isinstance(p, exp.Column) and isinstance(p.this, exp.Star):
            out.extend(table.columns)
        elif isinstance(p, exp.Column):
            if p.name not in table.all_columns:
                raise codes.bad_column()
            if p.name in out:
                raise SQLError(codes.ERR_WHERE, "Each column in the select used only once")
            out.append(p.name)
        else:
            simple = False
    _check_columns(table, _columns_in(e.args.get("where")))
    for part in ("group", "having", "order"):
        _check_columns(table, _columns_in(e.args.get(part)), aliases)
    for p in e.expressions:
        _check_columns(table, _columns_in(p))
    where = e.args.get("where")
    found = key_values(where.this, (table.key,), lifted) if where is not None else None
    if found is None and not table.scan:
        raise codes.no_key()
    if where is not None and not (found and _only_keys(where.this)):
        simple = False
    limit, offset = _int_arg(e.args.get("limit")), _int_arg(e.args.get("offset")) or 0
    query = None if simple else e
    if query is None:
        return Select(table, tuple(out), found[1] if found else None, None, offset, limit)
    if found is not None and where is not None:
        pin = _pin(where.this, (table.key,), lifted)
        if pin is not None:  # the rows are looked up by it: sqlglot's executor need not test it again
            pin.replace(exp.true())
    return Select(table, tuple(out), found[1] if found else None, query, offset, limit, _kept(query, lifted))


def _pin(cond: exp.Expr, keys: tuple[str, ...], lifted: Mapping[str, tuple[Value, ...]]) -> exp.Expr | None:
    """The conjunct ``key_values`` took the keys from, if it is nothing but key conditions."""
    if isinstance(cond, exp.Paren):
        return _pin(cond.this, keys, lifted)
    if isinstance(cond, exp.And):
        side = cond.this if key_values(cond.this, keys, lifted) is not None else cond.expression
        return _pin(side, keys, lifted)
    return cond if _only_keys(cond) else None


def _kept(e: exp.Expression, lifted: Mapping[str, tuple[Value, ...]]) -> dict[str, tuple[Value, ...]]:
    """The lifted lists ``e`` still holds, once they are bounded for sqlglot's executor."""
    kept = {p.name: lifted[p.name] for p in e.find_all(exp.Placeholder) if p.name in lifted}
    if sum(len(values) for values in kept.values()) > EXECUTOR_VALUES:
        raise codes.too_many_filter_values(EXECUTOR_VALUES)
    return kept


def _delete(e: exp.Delete, lifted: Mapping[str, tuple[Value, ...]]) -> Delete:
    table = _table(e.this)
    if table.read_only:
        raise codes.read_only(table.name)
    where = e.args.get("where")
    _check_columns(table, _columns_in(where))
    found = key_values(where.this, (table.key, *table.delete_keys), lifted) if where is not None else None
    if found is None:
        raise codes.no_key(delete=table.name == "revoked_tokens")
    return Delete(table, found[0], found[1])


def _show(e: exp.Show) -> Statement:
    kind = e.name.upper()
    if kind == "TABLES":
        return ShowTables(bool(e.args.get("full")))
    if kind == "DATABASES":
        return ShowDatabases()
    if kind == "STATUS":
        return ShowStatus(bool(e.args.get("global_")))
    if kind == "CREATE TABLE":
        target, db = e.args.get("target"), e.args.get("db")
        if target is None:
            raise codes.no_table()
        return ShowCreateTable(_table(exp.Table(this=target.copy(), db=db.copy() if db is not None else None)))
    if kind == "COLUMNS":
        target = e.args.get("target")
        name = target.name if target is not None else ""
        table = TABLES.get(name)
        if table is None:
            raise codes.no_table()
        return Describe(table)
    return Passthrough(e)
