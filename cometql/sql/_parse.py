"""SQL text -> CometQL statements.

The plain one-row INSERT goes through the regex fast path; everything else is
parsed by sqlglot (MySQL dialect) and mapped here. Statements that are not
about CometQL's tables (SET, USE, ``SELECT @@var``, ...) come back as
``Passthrough`` for mysql-mimic's own handlers. Errors are raised as
``SQLError`` with CppComet's codes and messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlglot
from sqlglot import expressions as exp
from sqlglot.errors import SqlglotError

from ..errors import SQLError
from . import codes
from ._fastpath import fast_insert
from ._history import history_select
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

__all__ = ["parse", "parse_expression"]

_INFO_SCHEMAS = {"information_schema", "mysql", "performance_schema", "sys"}
#: sqlglot knows only ``SHOW [FULL] COLUMNS FROM t``; MySQL (and CppComet) also take ``IN t``.
_SHOW_COLUMNS_IN = re.compile(r"\A(\s*show\s+(?:full\s+)?columns\s+)in(?=\s)", re.I)


def parse(sql: str) -> list[Statement]:
    """Parse one COM_QUERY text (possibly several statements) into statements."""
    fast = fast_insert(sql)
    if fast is not None:
        return [fast]
    sql = _SHOW_COLUMNS_IN.sub(r"\1FROM", sql, count=1)
    try:
        expressions = sqlglot.parse(sql, read="mysql")
    except (SqlglotError, RecursionError, ValueError, IndexError) as exc:
        raise codes.syntax() from exc
    return [parse_expression(e) for e in expressions if e is not None]


def parse_expression(e: exp.Expr) -> Statement:
    if isinstance(e, exp.Insert):
        return _insert(e)
    if isinstance(e, exp.Select):
        table = _table_of_select(e)
        if table is not None and table.name == STATS_HISTORY:
            return history_select(e, table)
        return Passthrough(e) if table is None else _select(e, table)
    if isinstance(e, exp.Delete):
        return _delete(e)
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
        return Passthrough(e)
    raise codes.syntax()


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


def _insert(e: exp.Insert) -> Insert:
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
    rows = []
    for row in values.expressions:
        items = row.expressions if isinstance(row, exp.Tuple) else [row]
        rows.append(tuple(literal(v) for v in items))
    return Insert(table, columns, tuple(rows))


def _columns_in(node: exp.Expr | None) -> Iterable[exp.Column]:
    if node is None:
        return ()
    return node.find_all(exp.Column)


def _check_columns(table: Table, nodes: Iterable[exp.Column], aliases: frozenset[str] | set[str] = frozenset()) -> None:
    for col in nodes:
        if col.name not in table.all_columns and col.name not in aliases:
            raise codes.bad_column()


def key_values(cond: exp.Expr, keys: tuple[str, ...]) -> tuple[str, tuple[Value, ...]] | None:
    """The key column and the values a WHERE condition pins it to, if it does.

    ``k = v``, ``k IN (...)``, their ORs, and ANDs where one side pins the key.
    """
    if isinstance(cond, exp.Paren):
        return key_values(cond.this, keys)
    if isinstance(cond, exp.EQ):
        for col, val in ((cond.this, cond.expression), (cond.expression, cond.this)):
            if isinstance(col, exp.Column) and col.name in keys and not isinstance(val, exp.Column):
                return col.name, (literal(val),)
        return None
    if isinstance(cond, exp.In):
        col = cond.this
        if isinstance(col, exp.Column) and col.name in keys and cond.expressions and not cond.args.get("query"):
            return col.name, tuple(literal(v) for v in cond.expressions)
        return None
    if isinstance(cond, exp.Or):
        left, right = key_values(cond.this, keys), key_values(cond.expression, keys)
        if left and right and left[0] == right[0]:
            return left[0], left[1] + right[1]
        return None
    if isinstance(cond, exp.And):
        return key_values(cond.this, keys) or key_values(cond.expression, keys)
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


def _select(e: exp.Select, table: Table) -> Select:
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
    found = key_values(where.this, (table.key,)) if where is not None else None
    if found is None and not table.scan:
        raise codes.no_key()
    if where is not None and not (found and _only_keys(where.this)):
        simple = False
    limit, offset = _int_arg(e.args.get("limit")), _int_arg(e.args.get("offset")) or 0
    query = None if simple else e
    return Select(table, tuple(out), found[1] if found else None, query, offset, limit)


def _delete(e: exp.Delete) -> Delete:
    table = _table(e.this)
    if table.read_only:
        raise codes.read_only(table.name)
    where = e.args.get("where")
    _check_columns(table, _columns_in(where))
    found = key_values(where.this, (table.key, *table.delete_keys)) if where is not None else None
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
